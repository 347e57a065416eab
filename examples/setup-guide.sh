#!/usr/bin/env bash
# AWS's "Set up an Amazon EMR Studio" guide, step by step with the AWS CLI, against emustudio.
# Each command is the guide's, plus --endpoint-url: the bucket for Workspace backups, the service
# role and the user role with their policies, the security groups with the documented rules, a
# Studio in each authentication mode, the IAM Identity Center lookup, Identity Store users and
# groups with their session mappings, and the CloudTrail lookup.
#
#   examples/setup-guide.sh                     # against http://localhost:8080 (emustudio up)
#   EMUSTUDIO_ENDPOINT=http://localhost:18080 examples/setup-guide.sh
#
# Needs the AWS CLI (`pip install awscli`, or v2). Run it against a new gateway: the names it
# makes (roles, policies, users) are the guide's and exist once per account.
set -euo pipefail

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_PAGER=""
endpoint="${EMUSTUDIO_ENDPOINT:-http://localhost:8080}"
region="$AWS_DEFAULT_REGION"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

aws() { command aws --endpoint-url "$endpoint" --output text "$@"; }

account=$(aws sts get-caller-identity --query Account)

echo "== 1. An S3 bucket for Workspace and notebook backups"
bucket="emr-studio-$account-$region"
aws s3 mb "s3://$bucket"
aws s3 ls

echo "== 2. The EMR Studio service role"
cat >"$work/service-trust.json" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"Service": "elasticmapreduce.amazonaws.com"},
    "Action": "sts:AssumeRole",
    "Condition": {
      "StringEquals": {"aws:SourceAccount": "$account"},
      "ArnLike": {"aws:SourceArn": "arn:aws:elasticmapreduce:$region:$account:*"}
    }
  }]
}
EOF
cat >"$work/service-policy.json" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "AllowEMRReadOnlyActions",
      "Effect": "Allow",
      "Action": ["elasticmapreduce:ListInstances", "elasticmapreduce:DescribeCluster",
                 "elasticmapreduce:ListSteps"],
      "Resource": "*"
    },
    {
      "Sid": "AllowEC2ENIActionsWithEMRTags",
      "Effect": "Allow",
      "Action": ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"],
      "Resource": ["arn:aws:ec2:*:*:network-interface/*"]
    },
    {
      "Sid": "AllowSecurityGroupsAndDescribes",
      "Effect": "Allow",
      "Action": ["ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
                 "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
                 "ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces",
                 "ec2:DescribeTags", "ec2:DescribeInstances", "ec2:DescribeSubnets",
                 "ec2:DescribeVpcs"],
      "Resource": "*"
    },
    {
      "Sid": "S3PermissionsForNotebookStorage",
      "Effect": "Allow",
      "Action": ["s3:PutObject", "s3:GetObject", "s3:GetEncryptionConfiguration",
                 "s3:ListBucket", "s3:DeleteObject"],
      "Resource": ["arn:aws:s3:::$bucket", "arn:aws:s3:::$bucket/*"]
    }
  ]
}
EOF
aws iam create-role --role-name EMRStudio_Service_Role \
    --assume-role-policy-document "file://$work/service-trust.json" --query Role.Arn
aws iam put-role-policy --role-name EMRStudio_Service_Role \
    --policy-name EMRStudioServiceRolePolicy --policy-document "file://$work/service-policy.json"
service_role=$(aws iam get-role --role-name EMRStudio_Service_Role --query Role.Arn)

echo "== 3. The user role (IAM Identity Center mode) and its session policies"
cat >"$work/user-trust.json" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"Service": "elasticmapreduce.amazonaws.com"},
    "Action": ["sts:AssumeRole", "sts:SetContext"]
  }]
}
EOF
cat >"$work/basic-user.json" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "AllowEMRBasicActions",
      "Effect": "Allow",
      "Action": ["elasticmapreduce:CreateEditor", "elasticmapreduce:DescribeEditor",
                 "elasticmapreduce:ListEditors", "elasticmapreduce:StartEditor",
                 "elasticmapreduce:StopEditor", "elasticmapreduce:DeleteEditor",
                 "elasticmapreduce:OpenEditorInConsole", "elasticmapreduce:AttachEditor",
                 "elasticmapreduce:DetachEditor", "elasticmapreduce:DescribeStudio",
                 "elasticmapreduce:ListStudios"],
      "Resource": "*"
    },
    {
      "Sid": "AllowS3ListAndLocationPermissions",
      "Effect": "Allow",
      "Action": ["s3:ListAllMyBuckets", "s3:ListBucket", "s3:GetBucketLocation"],
      "Resource": "arn:aws:s3:::*"
    }
  ]
}
EOF
aws iam create-role --role-name EMRStudio_User_Role \
    --assume-role-policy-document "file://$work/user-trust.json" --query Role.Arn
basic_policy=$(aws iam create-policy --policy-name EMRStudio_Basic_User_Policy \
    --policy-document "file://$work/basic-user.json" --query Policy.Arn)
aws iam attach-role-policy --role-name EMRStudio_User_Role --policy-arn "$basic_policy"
user_role=$(aws iam get-role --role-name EMRStudio_User_Role --query Role.Arn)

echo "== 4. The security groups, with the documented rules"
vpc=$(aws ec2 describe-vpcs --filters Name=is-default,Values=true --query 'Vpcs[0].VpcId')
read -r -a subnets < <(aws ec2 describe-subnets --filters "Name=vpc-id,Values=$vpc" \
    --query 'Subnets[0:2].SubnetId')
engine_sg=$(aws ec2 create-security-group --vpc-id "$vpc" --group-name DefaultEngineSecurityGroup \
    --description "EMR Studio engine security group" --query GroupId)
workspace_sg=$(aws ec2 create-security-group --vpc-id "$vpc" \
    --group-name DefaultWorkspaceSecurityGroupGit \
    --description "EMR Studio Workspace security group" --query GroupId)
# Engine: inbound TCP 18888 from the Workspace group only.
aws ec2 authorize-security-group-ingress --group-id "$engine_sg" \
    --ip-permissions "IpProtocol=tcp,FromPort=18888,ToPort=18888,UserIdGroupPairs=[{GroupId=$workspace_sg}]" \
    >/dev/null
# Workspace: no inbound; outbound TCP 18888 to the engine group and 443 for Git.
aws ec2 revoke-security-group-egress --group-id "$workspace_sg" \
    --ip-permissions 'IpProtocol=-1,IpRanges=[{CidrIp=0.0.0.0/0}]' >/dev/null
aws ec2 authorize-security-group-egress --group-id "$workspace_sg" \
    --ip-permissions "IpProtocol=tcp,FromPort=18888,ToPort=18888,UserIdGroupPairs=[{GroupId=$engine_sg}]" \
    "IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{CidrIp=0.0.0.0/0}]" >/dev/null
aws ec2 describe-security-groups --group-ids "$engine_sg" "$workspace_sg" \
    --query 'SecurityGroups[].[GroupName,GroupId]'

echo "== 5. A Studio with IAM authentication"
iam_studio=$(aws emr create-studio --name "Studio IAM" --auth-mode IAM --vpc-id "$vpc" \
    --subnet-ids "${subnets[@]}" --service-role "$service_role" \
    --workspace-security-group-id "$workspace_sg" --engine-security-group-id "$engine_sg" \
    --default-s3-location "s3://$bucket/studio-iam" --query StudioId)
aws emr describe-studio --studio-id "$iam_studio" --query 'Studio.[StudioId,AuthMode,Url]'

echo "== 6. IAM Identity Center: the instance and its Identity Store"
read -r instance_arn identity_store < <(aws sso-admin list-instances \
    --query 'Instances[0].[InstanceArn,IdentityStoreId]')
echo "$instance_arn $identity_store"

echo "== 7. Identity Store users and a group"
alice=$(aws identitystore create-user --identity-store-id "$identity_store" --user-name alice \
    --display-name "Alice Analyst" --name GivenName=Alice,FamilyName=Analyst --query UserId)
aws identitystore create-user --identity-store-id "$identity_store" --user-name bob \
    --display-name "Bob Builder" --name GivenName=Bob,FamilyName=Builder --query UserId
analysts=$(aws identitystore create-group --identity-store-id "$identity_store" \
    --display-name analysts --query GroupId)
aws identitystore create-group-membership --identity-store-id "$identity_store" \
    --group-id "$analysts" --member-id "UserId=$alice" --query MembershipId
# The lookup the guide's scripts make: a user's id by user name.
aws identitystore get-user-id --identity-store-id "$identity_store" \
    --alternate-identifier '{"UniqueAttribute":{"AttributePath":"userName","AttributeValue":"alice"}}' \
    --query UserId

echo "== 8. A Studio with IAM Identity Center authentication, and its session mappings"
sso_studio=$(aws emr create-studio --name "Studio SSO" --auth-mode SSO --vpc-id "$vpc" \
    --subnet-ids "${subnets[@]}" --service-role "$service_role" --user-role "$user_role" \
    --idc-instance-arn "$instance_arn" --idc-user-assignment REQUIRED \
    --workspace-security-group-id "$workspace_sg" --engine-security-group-id "$engine_sg" \
    --default-s3-location "s3://$bucket/studio-sso" --query StudioId)
aws emr create-studio-session-mapping --studio-id "$sso_studio" --identity-name analysts \
    --identity-type GROUP --session-policy-arn "$basic_policy"
aws emr create-studio-session-mapping --studio-id "$sso_studio" --identity-name bob \
    --identity-type USER --session-policy-arn "$basic_policy"
aws emr list-studio-session-mappings --studio-id "$sso_studio" \
    --query 'SessionMappings[].[IdentityType,IdentityName]'
aws sso-admin list-applications --instance-arn "$instance_arn" --query 'Applications[].Name'

echo "== 9. CloudTrail: who created the Studios"
aws cloudtrail lookup-events \
    --lookup-attributes AttributeKey=EventName,AttributeValue=CreateStudio \
    --query 'Events[].[EventName,Username]'
echo "done"
