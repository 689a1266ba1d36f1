#!/usr/bin/env bash
# Make sure Debian's nginx is installed for the tests of deploy/nginx.conf.example
# (tests/gallery/test_nginx_example.py runs it in front of the test server). The test starts
# its own nginx on free loopback ports; the package's own service is not needed.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-nginx.sh: nginx is missing; install it as root: apt-get install nginx-light" >&2
    exit 1
fi
echo "Installing Debian's nginx-light (apt-get) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq nginx-light </dev/null
