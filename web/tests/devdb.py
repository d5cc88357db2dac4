"""Prepare a development MariaDB like the mysql role does: the role's migrations, its accounts and grants.

Run as root next to a local server reached through its unix socket (root by unix_socket authentication):

    .venv/bin/python web/tests/devdb.py --socket /var/tmp/iact-webapp-db/mysqld.sock --port 3407 \\
        --out /var/tmp/iact-webapp-db/cnf

It applies ``roles/mysql/files/migrations`` with the role's own runner, creates every account of
``roles/mysql/vars/main.yml`` (``__mysql_users``) on ``localhost`` and ``127.0.0.1`` with the grants listed
there (the same dict the role hands to community.mysql.mysql_user), with random passwords, and writes one
option file per account, ``<out>/mysql-<purpose>.cnf`` (mode 0600), as the role writes them: the folder
``IACT_TEST_MYSQL_DEFAULTS_DIR`` of the tests. Nothing here is used by the stack.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pymysql
import yaml

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ("localhost", "127.0.0.1")


def grants(priv: dict[str, str], database: str) -> list[tuple[str, str]]:
    out = []
    for table, privileges in priv.items():
        # `db.table` keys name another database (iact_audit_read's `mysql.user`), as in the role
        target = "*.*" if table == "*.*" else "`{}`.`{}`".format(*(table.split(".", 1) if "." in table
                                                                    else (database, table)))
        out.append((target, privileges))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--database", default="iact")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    conn = pymysql.connect(unix_socket=args.socket, user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{args.database}` CHARACTER SET utf8mb4 "
                    "COLLATE utf8mb4_unicode_ci")
    runner = ROOT / "roles/mysql/files/usr/local/lib/iact/mysql-migrate"
    done = subprocess.run([sys.executable, str(runner), "--dir", str(ROOT / "roles/mysql/files/migrations"),
                           "--database", args.database, "--socket", args.socket],
                          capture_output=True, text=True, check=False)
    print(done.stdout.strip() or done.stderr.strip())
    if done.returncode != 0:
        return 1

    users = yaml.safe_load((ROOT / "roles/mysql/vars/main.yml").read_text())["__mysql_users"]
    args.out.mkdir(parents=True, exist_ok=True)
    os.chmod(args.out, 0o700)
    with conn.cursor() as cur:
        for user in users:
            password = secrets.token_urlsafe(24)
            for host in HOSTS:
                cur.execute(f"DROP USER IF EXISTS '{user['user']}'@'{host}'")
                cur.execute(f"CREATE USER '{user['user']}'@'{host}' IDENTIFIED BY %s", (password,))
                for target, privileges in grants(user["priv"], args.database):
                    cur.execute(f"GRANT {privileges} ON {target} TO '{user['user']}'@'{host}'")
            cnf = args.out / f"mysql-{user['purpose']}.cnf"
            body = f"[client]\nuser = {user['user']}\npassword = \"{password}\"\nhost = 127.0.0.1\nport = {args.port}\n"
            if user.get("with_database"):
                body += f"database = {args.database}\n"
            cnf.write_text(body)
            os.chmod(cnf, 0o600)
    print(json.dumps({"accounts": [u["user"] for u in users], "option_files": str(args.out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
