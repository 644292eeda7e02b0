#!/bin/sh
# Stop the services before their binary goes (not on an upgrade: the
# postinstall of the new version restarts them).
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl stop dnslb-vip.service dnslb.service >/dev/null 2>&1 || true
	systemctl disable dnslb-vip.service dnslb.service >/dev/null 2>&1 || true
fi
exit 0
