#!/bin/sh
# Write a mosquitto password file for every user named in the ACL, from secret files.
#
#   make-passwords.sh SECRETS_DIR PASSWORD_FILE [ACL_FILE]
#
# Each user <name> takes its password from SECRETS_DIR/mqtt_password_<name> (trailing newline ignored). A missing
# or empty secret is an error naming the file, and no file is written.
# Passwords never appear on a command line: they are written to a 0600 temporary file and hashed in place with
# `mosquitto_passwd -U` (PBKDF2-SHA512). POSIX sh, so it runs in the eclipse-mosquitto (Alpine) image and on a host.
set -eu

secrets_dir=${1:?usage: make-passwords.sh SECRETS_DIR PASSWORD_FILE [ACL_FILE]}
out=${2:?usage: make-passwords.sh SECRETS_DIR PASSWORD_FILE [ACL_FILE]}
acl=${3:-$(dirname "$0")/acl}

users=$(sed -n 's/^user[[:space:]]\{1,\}\([^[:space:]]\{1,\}\).*$/\1/p' "$acl")
[ -n "$users" ] || { echo "make-passwords: no 'user' lines in $acl" >&2; exit 1; }

umask 077
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
: > "$tmp"
missing=""
for user in $users; do
    file="$secrets_dir/mqtt_password_$user"
    if [ -f "$file" ]; then
        password=$(cat "$file")
    else
        password=""
    fi
    case "$password" in
        "") missing="$missing $file"; continue ;;
        *:* | *"
"*) echo "make-passwords: $file must be one line without ':'" >&2; exit 1 ;;
    esac
    printf '%s:%s\n' "$user" "$password" >> "$tmp"
done
if [ -n "$missing" ]; then
    echo "make-passwords: missing or empty secret file(s):$missing" >&2
    echo "make-passwords: create them (python -m tools.init_secrets does) and start again" >&2
    exit 1
fi
mosquitto_passwd -U "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "make-passwords: $(echo $users | wc -w | tr -d ' ') users written to $out" >&2
