# PostgreSQL for the docker drill (drills/docker_stack.py), built from Debian's packages on the
# debootstrap base because no image registry is reachable there. It honours what compose.yaml
# gives the official `postgres` image: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, data in
# /var/lib/postgresql/data; plus PGPORT and PG_LISTEN (the drill runs it on the host network).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/postgresql /var/lib/postgresql/data \
 && chown postgres:postgres /run/postgresql /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
ENTRYPOINT ["sh", "/usr/local/bin/postgres-entrypoint"]
