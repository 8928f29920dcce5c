# regtrigger on Tencent SCF with TencentDB for Redis and CKafka: the
# receiver (function URL) and the dispatcher (CKafka trigger + a 5-second
# timer). An example to adapt (docs/tencent-scf.md); the Redis and CKafka
# instances are referred to, not created. Build the zips first:
#   make build-scf
# Written from the tencentcloud provider's documentation; not applied from
# here (no Tencent account).

terraform {
  required_providers {
    tencentcloud = {
      source = "tencentcloudstack/tencentcloud"
    }
  }
}

provider "tencentcloud" {
  region = var.region
}

variable "region" { default = "ap-guangzhou" }
variable "vpc_id" {}
variable "subnet_id" {}
variable "redis_url" {
  description = "redis://:<password>@<private ip>:6379/0 of the TencentDB for Redis instance"
  sensitive   = true
}
variable "kafka_url" { description = "kafka://<private ip>:9092/regtrigger-tasks" }
variable "ckafka_instance_id" {}
variable "registries" {
  description = "REGTRIGGER_REGISTRIES, e.g. tcr=<a long random token>"
  sensitive   = true
}

locals {
  common_env = {
    REGTRIGGER_STORE = var.redis_url
    REGTRIGGER_QUEUE = var.kafka_url
    RETENTION_DAYS   = "30"
    LOG_LEVEL        = "info"
  }
}

resource "tencentcloud_scf_function" "receiver" {
  name        = "regtrigger-receiver"
  description = "regtrigger receiver - registry notifications to tasks on CKafka"
  runtime     = "Go1"
  handler     = "main"
  zip_file    = "${path.module}/../../../dist/scf/receiver.zip"
  mem_size    = 128
  timeout     = 10
  vpc_id      = var.vpc_id
  subnet_id   = var.subnet_id
  environment = merge(local.common_env, {
    REGTRIGGER_REGISTRIES = var.registries
    DEDUPE_WINDOW         = "10m"
  })
  # The function URL is enabled on the function (console or SCF API); the
  # registries post to <function URL>/v1/notify.
}

resource "tencentcloud_scf_function" "dispatcher" {
  name        = "regtrigger-dispatcher"
  description = "regtrigger dispatcher - guarded webhook calls, retries in Redis"
  runtime     = "Go1"
  handler     = "main"
  zip_file    = "${path.module}/../../../dist/scf/dispatcher.zip"
  mem_size    = 256
  timeout     = 300
  vpc_id      = var.vpc_id
  subnet_id   = var.subnet_id
  environment = merge(local.common_env, {
    MAX_ATTEMPTS      = "8"
    CONCURRENCY       = "10"
    TRIGGER_CACHE_TTL = "10s"
  })

  triggers {
    name = "${var.ckafka_instance_id}-regtrigger-tasks"
    type = "ckafka"
    trigger_desc = jsonencode({
      maxMsgNum = "50"
      offset    = "latest"
      retry     = "10000"
      timeOut   = "60"
    })
  }

  triggers {
    name         = "requeue-due-retries"
    type         = "timer"
    trigger_desc = "*/5 * * * * * *"
  }
}
