#!/bin/sh
# Nightly pulls, as they were before haul.
aws s3 sync s3://bucket/reports/ ./data --request-payer requester --exclude "*" --include "*.csv" --include "*.parquet"
0 2 * * * /usr/local/bin/aws s3 sync s3://analytics-exports/매출/ /srv/data/sales --exclude "*" --include "*.csv" --delete >> /var/log/pull.log 2>&1
aws --profile partner s3 sync s3://partner-exports/reports/ s3://our-archive/partner/reports/ --storage-class STANDARD_IA --region ap-northeast-2
aws s3 cp --recursive /srv/out s3://analytics-results/out/ --exclude "*.tmp" --exclude "tmp/*" --sse AES256 --only-show-errors
aws s3 sync s3://bucket/logs/ /srv/logs --exclude "*.gz" --include "keep.gz" --size-only --exact-timestamps --acl public-read-write-all
aws s3 cp s3://bucket/one-file.csv ./one-file.csv
aws --endpoint-url http://127.0.0.1:9000 s3 sync ./local s3://minio-bucket/backup/ --delete; echo done
aws s3 ls s3://bucket/
# Dated paths, as crontabs write them (cron needs `\%`), and the environment before a command.
0 3 * * * AWS_PROFILE=prod aws s3 sync /data/$(date +\%F)/ s3://lake/daily/$(date +\%F)/ --exclude "*.tmp"
AWS_REGION=eu-west-1 FOO=bar aws s3 sync s3://exports/$(date -u -d yesterday +%Y/%m/%d)/ /srv/exports/$(date -u -d yesterday +%Y%m%d)
# --exact-timestamps: for a download, replace a same-size local file that differs.
aws s3 sync s3://bucket/landing/ /srv/landing --exact-timestamps
aws s3 sync /srv/outbox s3://bucket/outbox/ --exact-timestamps
export AWS_PROFILE=archive
aws s3 sync /srv/archive s3://archive-bucket/nightly/ \
    --storage-class GLACIER_IR \
    --delete
# Objects for another account's bucket: its owner must be able to read them.
aws s3 cp --recursive /srv/share s3://partner-inbox/from-us/ --acl bucket-owner-full-control --content-type text/csv --cache-control max-age=3600 --metadata team=analytics,source=nightly
