# maind's signed commands (Documentation/commands.md): cmd_store.c (schema,
# the towns' reports) and mainctl_cmd.c are listed in maind.mk; the rest:
MAIND_PARTS += server/maind/commands/cmd_queue.c server/maind/commands/cmd_audit.c \
	server/maind/commands/cmd_submit.c
