#!/usr/bin/env bash
# EMR Studio with the AWS CLI against emustudio: a VPC, a Studio, a user who may open it, a
# Workspace. The commands are the ones you would run against AWS, plus --endpoint-url.
#
#   examples/cli.sh                     # against http://localhost:8080 (emustudio up, compose)
#   EMUSTUDIO_ENDPOINT=http://localhost:18080 examples/cli.sh
#
# Needs the AWS CLI (`pip install awscli`, or v2) and, for the Workspace commands (aws emr-studio
# ...), emustudio installed: AWS has those operations only as IAM actions, and emustudio ships
# their model, which AWS_DATA_PATH hands to the CLI.
set -euo pipefail

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_PAGER=""
endpoint="${EMUSTUDIO_ENDPOINT:-http://localhost:8080}"
python="${PYTHON:-python3}"
AWS_DATA_PATH="$("$python" -c 'from emustudio.aws.spec import DATA_PATH; print(DATA_PATH)')"
export AWS_DATA_PATH

aws() { command aws --endpoint-url "$endpoint" --output text "$@"; }

echo "== the default VPC and its zones, as in a new account"
aws ec2 describe-availability-zones --query 'AvailabilityZones[].ZoneName'
aws ec2 describe-vpcs --filters Name=is-default,Values=true --query 'Vpcs[].[VpcId,CidrBlock]'

echo "== a VPC with a subnet in two zones, and the Studio's security groups"
vpc=$(aws ec2 create-vpc --cidr-block 10.0.0.0/16 --query Vpc.VpcId)
subnet_a=$(aws ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.0.1.0/24 \
    --availability-zone us-east-1a --query Subnet.SubnetId)
subnet_b=$(aws ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.0.2.0/24 \
    --availability-zone us-east-1b --query Subnet.SubnetId)
workspace_sg=$(aws ec2 create-security-group --vpc-id "$vpc" --group-name cli-workspace \
    --description "EMR Studio Workspaces" --query GroupId)
engine_sg=$(aws ec2 create-security-group --vpc-id "$vpc" --group-name cli-engine \
    --description "EMR Studio engine" --query GroupId)
echo "$vpc $subnet_a $subnet_b $workspace_sg $engine_sg"

echo "== the Studio"
account=$(aws sts get-caller-identity --query Account)
studio=$(aws emr create-studio --name cli-studio --auth-mode IAM --vpc-id "$vpc" \
    --subnet-ids "$subnet_a" "$subnet_b" \
    --service-role "arn:aws:iam::$account:role/EMRStudio_Service_Role" \
    --workspace-security-group-id "$workspace_sg" --engine-security-group-id "$engine_sg" \
    --default-s3-location s3://emustudio/cli --query StudioId)
aws emr describe-studio --studio-id "$studio" --query 'Studio.[StudioId,Name,AuthMode,Url]'
aws emr list-studios --query 'Studios[].[StudioId,Name]'
studio_arn=$(aws emr describe-studio --studio-id "$studio" --query Studio.StudioArn)

echo "== a user who may only describe that Studio"
user="cli-user-$RANDOM"
aws iam create-user --user-name "$user" --query User.Arn
aws iam put-user-policy --user-name "$user" --policy-name describe-one-studio --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"elasticmapreduce:DescribeStudio\",\"Resource\":\"$studio_arn\"}]}"
read -r key secret < <(aws iam create-access-key --user-name "$user" \
    --query 'AccessKey.[AccessKeyId,SecretAccessKey]')
AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret \
    aws emr describe-studio --studio-id "$studio" --query Studio.Name
if AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret aws emr list-studios 2>/dev/null; then
    echo "list-studios was allowed: unexpected" >&2
    exit 1
fi
echo "list-studios as $user: refused (AccessDeniedException), as on AWS"

echo "== a Workspace (the first one on a Docker host builds its image: minutes, once)"
editor=$(aws emr-studio create-editor --studio-id "$studio" --name cli-notebooks --query EditorId)
for _ in $(seq 1 900); do
    status=$(aws emr-studio describe-editor --editor-id "$editor" --query Editor.Status)
    [ "$status" = Starting ] || break
    sleep 1
done
aws emr-studio describe-editor --editor-id "$editor" \
    --query 'Editor.[EditorId,Status,AvailabilityZone,Url]'
[ "$status" = Ready ]
aws emr-studio list-editors --studio-id "$studio" --query 'Editors[].[EditorId,Name,Status]'

echo "== clean up"
aws emr-studio delete-editor --editor-id "$editor" >/dev/null
aws iam delete-access-key --user-name "$user" --access-key-id "$key"
aws iam delete-user-policy --user-name "$user" --policy-name describe-one-studio
aws iam delete-user --user-name "$user"
aws emr delete-studio --studio-id "$studio"
for sg in "$workspace_sg" "$engine_sg"; do aws ec2 delete-security-group --group-id "$sg"; done
for subnet in "$subnet_a" "$subnet_b"; do
    # A subnet goes once the deleted Workspace's container has left its network.
    for _ in $(seq 1 60); do
        aws ec2 delete-subnet --subnet-id "$subnet" 2>/dev/null && break
        sleep 1
    done
done
aws ec2 delete-vpc --vpc-id "$vpc"
echo "done"
