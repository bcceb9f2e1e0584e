#!/bin/sh
# End to end: the push button on the simulated GPIO chip (an input driven
# through sim_gpio_levels, edge events through gm-sim-gpio's interrupts)
# confirms a remote reconnection only once it is armed (DLMS pattern).
. ./gm-lib.sh
ready
BTN=$(conf relays button_line)
case $BTN in none|'') fail "no button_line in $CONF" ;; esac
pressed=0	# the level of a pressed button: active low is meterd's default
[ "$(conf relays button_active_low)" = false ] && pressed=1
set_btn() {
	l=$(sim sim_gpio_levels)
	simw sim_gpio_levels $(( (l & ~(1 << BTN)) | ($1 << BTN) ))
}
press() { set_btn $pressed; sleep 0.1; set_btn $((1 - pressed)); sleep 0.4; }
set_btn $((1 - pressed))
sleep 0.5
main() { [ "$(line_level "$MAIN_LINE")" = "$1" ] || fail "main relay line $MAIN_LINE not at level $1"; }

press
sleep 1
[ "$(prop MainRelay)" = closed ] && [ "$(prop RemoteState)" = connected ] ||
	fail "a press while connected changed the state"
call Disconnect >/dev/null || fail "Disconnect"
wait_prop MainRelay open 5 || fail "Disconnect did not open the relay"
main $((1 - MAIN_CLOSED))
press
sleep 2
[ "$(prop RemoteState)" = disconnected ] && [ "$(prop MainRelay)" = open ] ||
	fail "a press without ArmReconnect reconnected ($(prop RemoteState))"
echo "press while disconnected and not armed: relay stays open"
call ArmReconnect >/dev/null || fail "ArmReconnect"
wait_prop RemoteState armed 5 || fail "RemoteState $(prop RemoteState) after ArmReconnect"
sleep 2
[ "$(prop MainRelay)" = open ] || fail "ArmReconnect alone closed the relay"
main $((1 - MAIN_CLOSED))
echo "armed: relay stays open until the button"
press
wait_prop MainRelay closed 5 || fail "the button did not confirm the reconnection"
main $MAIN_CLOSED
[ "$(prop RemoteState)" = connected ] || fail "RemoteState $(prop RemoteState) after the button"
echo "button press confirmed the reconnection: relay closed, line $MAIN_LINE at $MAIN_CLOSED"
