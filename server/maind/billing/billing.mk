# maind billing (issue 13, Documentation/billing.md): tariffs, VEE, rating,
# bills, monthly summaries. Prices with meterd's own tariff engine
# (agent/core/tariff.c), so that both read a tariff the same way.
# (+= on recursively expanded lists: read before or after maind.mk.)
MAIND_PARTS += server/maind/billing/bill_copy.c server/maind/billing/bill_lines.c \
	server/maind/billing/bill_rate.c server/maind/billing/bill_issue.c agent/core/tariff.c
