#!/bin/sh
# Broker container entry point: build the password file from the Compose secrets, copy the ACL beside it (owned by
# the broker user, mode 0600, as mosquitto >= 2.0.16 asks), then run mosquitto in the foreground.
set -eu
conf_dir=/mosquitto/config
auth_dir=${BATSCHED_MOSQUITTO_AUTH_DIR:-/mosquitto/auth}
mkdir -p "$auth_dir"
sh "$conf_dir/make-passwords.sh" /run/secrets "$auth_dir/passwd" "$conf_dir/acl"
cp "$conf_dir/acl" "$auth_dir/acl"
chmod 0600 "$auth_dir/passwd" "$auth_dir/acl"
if [ "$(id -u)" = 0 ]; then
    chown -R mosquitto:mosquitto "$auth_dir" /mosquitto/data
fi
exec mosquitto -c "$conf_dir/mosquitto.conf"
