/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mainctl's commands by part of maind: each part handles its own commands
 * in its folder (billing/, notices/, commands/, detect/).
 *
 * A part's handler returns -2 when cmd is not one of its commands, else the
 * exit status (0 done, 1 failed, 2 usage). args: the words after cmd.
 * conninfo: the primary; report: where read-only reports go (the hot
 * standby when configured, else the primary). Each part adds its usage lines
 * through its *_usage() (printed by `mainctl` without a command).
 */
#ifndef MAINCTL_PARTS_H
#define MAINCTL_PARTS_H

#include <libpq-fe.h>

#include "maind_config.h"

struct mainctl_ctx {
	const char *conninfo;
	const char *report;
	const struct maind_config *cfg;
};

int mctl_bill(const struct mainctl_ctx *x, const char *cmd, int argc, char **args);
int mctl_notice(const struct mainctl_ctx *x, const char *cmd, int argc, char **args);
int mctl_cmd(const struct mainctl_ctx *x, const char *cmd, int argc, char **args);
int mctl_alert(const struct mainctl_ctx *x, const char *cmd, int argc, char **args);
int mctl_web(const struct mainctl_ctx *x, const char *cmd, int argc, char **args);
void mctl_bill_usage(void);
void mctl_notice_usage(void);
void mctl_cmd_usage(void);
void mctl_alert_usage(void);
void mctl_web_usage(void);

/* Shared (mainctl_util.c): connect (NULL, the error printed), a statement
 * (NULL, the error printed), a result as aligned columns with a header
 * (NULL shown as "-"). */
PGconn *mctl_open(const char *conninfo);
PGresult *mctl_q(PGconn *c, const char *sql, int n, const char *const *v);
void mctl_table(const PGresult *r);

#endif
