#!/bin/sh
# MinIO's command line on rclone: `server <dir> [--address :9000]` serves <dir> over S3 with
# MINIO_ROOT_USER / MINIO_ROOT_PASSWORD as the access key; anything else is an rclone command.
set -eu
if [ "${1:-}" != "server" ]; then
    exec rclone "$@"
fi
shift
dir=/data
address=:9000
while [ $# -gt 0 ]; do
    case "$1" in
        --address) address="$2"; shift 2 ;;
        --address=*) address="${1#--address=}"; shift ;;
        --console-address) shift 2 ;;  # MinIO's web console: none here
        --console-address=*) shift ;;
        -*) echo "s3-local: ignoring MinIO option $1" >&2; shift ;;
        *) dir="$1"; shift ;;
    esac
done
mkdir -p "$dir"
echo "s3-local: serving $dir over S3 on $address (rclone serve s3)" >&2
exec rclone serve s3 "$dir" \
    --addr "$address" \
    --auth-key "${MINIO_ROOT_USER},${MINIO_ROOT_PASSWORD}" \
    --log-level INFO
