#!/bin/sh
# Broker container entry point: build the password file from the Compose secrets, copy the ACL and the TLS server
# certificate and key beside it (owned by the broker user, mode 0600, as mosquitto >= 2.0.16 asks), then run
# mosquitto in the foreground. The paths are the eclipse-mosquitto image's; the variables exist so the tests can
# run this very script.
set -eu
conf_dir=${MOSQUITTO_CONF_DIR:-/mosquitto/config}
secrets_dir=${MOSQUITTO_SECRETS_DIR:-/run/secrets}
auth_dir=${MOSQUITTO_AUTH_DIR:-/mosquitto/auth}
data_dir=${MOSQUITTO_DATA_DIR:-/mosquitto/data}
mkdir -p "$auth_dir"
sh "$conf_dir/make-passwords.sh" "$secrets_dir" "$auth_dir/passwd" "$conf_dir/acl"
cp "$conf_dir/acl" "$auth_dir/acl"
for part in crt key; do
    if [ ! -s "$secrets_dir/mqtt_server_$part" ]; then
        echo "entrypoint: $secrets_dir/mqtt_server_$part is missing: run python3 tools/init_secrets.py and start again" >&2
        exit 1
    fi
    cp "$secrets_dir/mqtt_server_$part" "$auth_dir/server.$part"
done
chmod 0600 "$auth_dir/passwd" "$auth_dir/acl" "$auth_dir/server.crt" "$auth_dir/server.key"
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown -R mosquitto:mosquitto "$auth_dir"
    if [ -d "$data_dir" ]; then chown -R mosquitto:mosquitto "$data_dir"; fi
fi
exec mosquitto -c "$conf_dir/mosquitto.conf"
