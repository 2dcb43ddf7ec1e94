#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, as root and without systemd (docs/cluster.md):
# munge, MariaDB + slurmdbd (accounting, so that sacct and submitit see job states), slurmctld
# and slurmd, with their state under $SLURM_DIR. `up` is idempotent and returns once the node
# is idle; `down` stops the daemons and keeps the state.
#   cluster/slurm.sh up|down|status
set -euo pipefail

PROJECT=$(cd "$(dirname "$0")/.." && pwd)
SLURM_DIR=${SLURM_DIR:-$PROJECT/.cache/slurm}
DB_PORT=${SLURM_DB_PORT:-3307}
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
NODE=$(hostname -s)

die() { echo "error: $*" >&2; exit 1; }

require() {
    [ "$(id -u)" = 0 ] || die "the local cluster is started as root (its daemons run as root here)"
    for cmd in munged slurmctld slurmd slurmdbd sacctmgr mariadbd mariadb-install-db; do
        command -v "$cmd" >/dev/null || die "$cmd not found: apt-get install -y slurm-wlm slurmdbd munge mariadb-server"
    done
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

poll() {  # poll <seconds> <what> <command...>: until the command succeeds
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "$what not ready after a while; see $SLURM_DIR/log"
        sleep 0.2
    done
}

start_munge() {
    mkdir -p /run/munge && chown munge:munge /run/munge
    running /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
    poll 10 munge sh -c 'munge -n | unmunge'
}

start_mariadb() {
    local db=$SLURM_DIR/mariadb
    if [ ! -d "$db/data/mysql" ]; then
        mkdir -p "$db/data"
        mariadb-install-db --user=root --datadir="$db/data" --auth-root-authentication-method=socket >"$SLURM_DIR/log/mariadb-install.log" 2>&1
    fi
    running "$db/mariadbd.pid" || (mariadbd --user=root --datadir="$db/data" --bind-address=127.0.0.1 --port="$DB_PORT" \
        --socket="$db/mariadbd.sock" --pid-file="$db/mariadbd.pid" --log-error="$SLURM_DIR/log/mariadb.log" >>"$SLURM_DIR/log/mariadb.log" 2>&1 &)
    poll 30 MariaDB mariadb --socket="$db/mariadbd.sock" -e 'select 1'
    [ -f "$SLURM_DIR/db_password" ] || (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SLURM_DIR/db_password")
    mariadb --socket="$db/mariadbd.sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$(cat "$SLURM_DIR/db_password")';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

write_configs() {
    local node_line
    # slurmd -C: the node's CPUs, boards, sockets, cores, threads and memory; a little memory is
    # kept back so that the node is not drained for having less than it declares
    node_line=$(slurmd -C | head -1 | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^RealMemory=/) { split($i, m, "="); $i = "RealMemory=" int(m[2] * 0.95) } print}')
    mkdir -p /etc/slurm
    cat >"$CONF" <<CONF
# written by latentevo's cluster/slurm.sh
ClusterName=local
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
$node_line State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
    (umask 077 && cat >"$DBD_CONF" <<CONF
# written by latentevo's cluster/slurm.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$SLURM_DIR/db_password")
StorageLoc=slurm_acct_db
PidFile=$SLURM_DIR/slurmdbd.pid
LogFile=$SLURM_DIR/log/slurmdbd.log
CONF
)
}

up() {
    require
    mkdir -p "$SLURM_DIR"/{state,spool,log}
    start_munge
    start_mariadb
    write_configs
    running "$SLURM_DIR/slurmdbd.pid" || slurmdbd
    poll 30 slurmdbd sacctmgr -n list cluster
    sacctmgr -i -n list cluster format=cluster | grep -qw local || sacctmgr -i add cluster local >/dev/null
    running "$SLURM_DIR/slurmctld.pid" || slurmctld
    running "$SLURM_DIR/slurmd.pid" || slurmd
    poll 60 "the node" sh -c "sinfo -h -N -o %T | grep -Eq '^(idle|mixed|allocated)'"
    echo "slurm is up: $(sinfo -h -o '%P %D node(s) %T')"
}

down() {
    local pid
    for pid in "$SLURM_DIR/slurmd.pid" "$SLURM_DIR/slurmctld.pid" "$SLURM_DIR/slurmdbd.pid" "$SLURM_DIR/mariadb/mariadbd.pid"; do
        if running "$pid"; then kill "$(cat "$pid")"; fi
    done
    for pid in "$SLURM_DIR/slurmd.pid" "$SLURM_DIR/slurmctld.pid" "$SLURM_DIR/slurmdbd.pid" "$SLURM_DIR/mariadb/mariadbd.pid"; do
        poll 30 "stopping $(basename "$pid" .pid)" sh -c "! { [ -f '$pid' ] && kill -0 \$(cat '$pid'); }"
    done
    echo "slurm is down (state kept in $SLURM_DIR)"
}

status() { sinfo; }

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) die "usage: cluster/slurm.sh up|down|status" ;;
esac
