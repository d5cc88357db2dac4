"""Fixtures of the health agent's integration tests: the real MariaDB (and Cassandra), from env vars.

``IACT_TEST_MYSQL_DEFAULTS``            MySQL option file of a user with the iact_health grants (required;
                                         the MySQL tests skip without it). The schema must include
                                         migrations 0002 and 0010.
``IACT_TEST_CASSANDRA_HOSTS``           comma-separated CQL contact points (the CQL login test skips without)
``IACT_TEST_CASSANDRA_USER``            a role that may log in
``IACT_TEST_CASSANDRA_PASSWORD_FILE``   0600 file with its password
``IACT_TEST_CASSANDRA_PORT``            CQL port (default 9042)

The MariaDB fixtures (``mysql_defaults``, ``db``, ``test_host``: every test its own ``host`` value, so tests
never see each other's rows) are shared with the remediation and collector tests: ../conftest.py.
"""
