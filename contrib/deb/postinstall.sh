#!/bin/sh
# The units run as a DynamicUser: no account to create. They are not
# enabled here: the shipped config serves only the example on
# 127.0.0.1:5353. `systemctl enable --now dnslb` once it is yours.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# An upgrade restarts what runs, on the new binary.
	for unit in dnslb.service dnslb-vip.service; do
		if systemctl is-active --quiet "$unit"; then
			systemctl try-restart "$unit" || true
		fi
	done
fi
exit 0
