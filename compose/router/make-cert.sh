#!/bin/sh
# Make the router's self-signed certificate for HTTPS on WEB_TLS_PORT, once,
# into the directory given (the router-tls volume). The db container runs it
# before Postgres starts: the haproxy image has no openssl.
set -eu
cd "$1"
if [ ! -s router.pem ]; then
	echo "router: making the self-signed certificate for localhost and 127.0.0.1"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout router.key -out router.crt 2> /dev/null
	cat router.crt router.key > router.pem.new
	rm router.key
	# HAProxy runs as its own unprivileged user, which this image does not know.
	chmod 644 router.pem.new router.crt
	mv router.pem.new router.pem
fi
