#!/usr/bin/env bash
# Create the Django superuser `admin` once, with a random password saved in
# $DATA_DIR/admin-password.txt (mode 0600). Does nothing when that file exists.
# Usage: DATA_DIR=var deploy/ensure-admin.sh .venv/bin/python
set -euo pipefail

python=${1:-.venv/bin/python}
data_dir=${DATA_DIR:-${GLASSHOUSE_DATA_DIR:-var}}
file="$data_dir/admin-password.txt"

if [ -s "$file" ]; then
    exit 0
fi
mkdir -p "$data_dir"
password=$("$python" -c 'import secrets; print(secrets.token_urlsafe(18))')
# Creates the user, or resets its password when the database already has one
# (e.g. DATABASE_URL points at a database that outlived the data folder).
GLASSHOUSE_ADMIN_PASSWORD="$password" "$python" manage.py shell --no-imports -c '
import os
from django.contrib.auth import get_user_model
User = get_user_model()
user, created = User.objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
user.is_staff = user.is_superuser = True
user.set_password(os.environ["GLASSHOUSE_ADMIN_PASSWORD"])
user.save()
print("Created" if created else "Reset the password of", "the superuser admin")
'
(umask 077 && printf '%s\n' "$password" > "$file")
echo "Its password is in $file"
