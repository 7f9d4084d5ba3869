################################################################################
# Results bucket (created unless create_results_bucket = false)
################################################################################

locals {
  results_bucket_name = (
    var.results_bucket_name != null ? var.results_bucket_name :
    "${local.name}-results-${local.account_id}-${local.region}"
  )
  results_bucket_arn = "arn:${local.partition}:s3:::${local.results_bucket_name}"
}

resource "aws_s3_bucket" "results" {
  count = var.create_results_bucket ? 1 : 0

  #checkov:skip=CKV_AWS_18:Server access logging needs a separate log bucket that the platform team owns; CloudTrail data events are the alternative.
  #checkov:skip=CKV_AWS_144:Cross-region replication of results is a platform decision (and doubles storage); results can be recomputed from the experiment.
  #checkov:skip=CKV_AWS_145:SSE-S3 by default; set var.kms_key_arn for SSE-KMS with a customer-managed key.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications: the launcher follows runs through Batch.
  bucket        = local.results_bucket_name
  force_destroy = var.results_bucket_force_destroy

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.results_bucket_name != null || length("${local.name}-results-${local.account_id}-${local.region}") <= 63
      error_message = "The generated results bucket name is longer than 63 characters: set results_bucket_name or a shorter name_prefix."
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "results" {
  count = var.create_results_bucket ? 1 : 0

  bucket = aws_s3_bucket.results[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "results" {
  count = var.create_results_bucket ? 1 : 0

  bucket                  = aws_s3_bucket.results[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  count = var.create_results_bucket ? 1 : 0

  bucket = aws_s3_bucket.results[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn != null ? "aws:kms" : "AES256"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_versioning" "results" {
  count = var.create_results_bucket && var.results_bucket_versioning ? 1 : 0

  bucket = aws_s3_bucket.results[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  count = var.create_results_bucket ? 1 : 0

  bucket = aws_s3_bucket.results[0].id

  rule {
    id     = "housekeeping"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    dynamic "noncurrent_version_expiration" {
      for_each = var.results_bucket_versioning && var.results_noncurrent_version_expiration_days != null ? [1] : []

      content {
        noncurrent_days = var.results_noncurrent_version_expiration_days
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.results]
}

data "aws_iam_policy_document" "results_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      local.results_bucket_arn,
      "${local.results_bucket_arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "results" {
  count = var.create_results_bucket ? 1 : 0

  bucket = aws_s3_bucket.results[0].id
  policy = data.aws_iam_policy_document.results_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.results]
}
