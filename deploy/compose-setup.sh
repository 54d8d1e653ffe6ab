#!/bin/sh
# One-shot setup of docker-compose.yml, run by its `setup` service as root in
# the tollgate image. Arguments: the service accounts to sign tokens for.
#
# * /keys: the bus's Ed25519 key pair, made once (`tollgate keys generate`) and
#   kept in the `bus-key` volume; only the router mounts it.
# * /public: a copy of the public key, for the services (volume `bus-public-key`).
# * /tokens/<account>/token.jwt: a token per service account, signed again at
#   every `docker compose up` with the verifier's maximum lifetime (24 h);
#   each volume is mounted only by the service that uses that account.
#
# Files end up owned by the image's unprivileged user (uid 10001).
set -eu

config=/etc/tollgate/tollgate.toml
uid=10001

umask 077
if [ -f /keys/bus-assertion.pem ]; then
    echo "setup: keeping the bus key in /keys"
else
    echo "setup: generating the bus key in /keys"
    tollgate keys generate --out /keys
fi
cp /keys/bus-assertion.pub.pem /public/bus-assertion.pub.pem
chmod 0644 /public/bus-assertion.pub.pem
chown -R "$uid:$uid" /keys /public

for account in "$@"; do
    dir="/tokens/$account"
    if [ ! -d "$dir" ]; then
        echo "setup: $dir is not mounted; add a volume for $account" >&2
        exit 1
    fi
    tollgate token sign --config "$config" --consumer "$account" --purpose registration --ttl 1440m > "$dir/token.jwt.new"
    mv "$dir/token.jwt.new" "$dir/token.jwt"
    chown -R "$uid:$uid" "$dir"
    echo "setup: signed a registration token for $account"
done
