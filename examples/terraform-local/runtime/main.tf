# A Terraform module that runs an appfleet runtime on the machine that applies it, with Terraform's
# builtin provider only (terraform_data and local-exec: nothing to download). It follows appfleet's
# module contract: it takes the runtime's token as the sensitive variable "token" and outputs "endpoint".
#
# Create starts `appfleet runtime serve` detached (its own session, stdio redirected, or Terraform would
# wait for it forever) and waits until /readyz answers; destroy stops it and waits until it is gone.
# Changing any setting below replaces the resource: the runtime restarts with the same data dir, so its
# apps and their data are kept. The data dir is never deleted by this module.
#
# The port: var.listen defaults to 127.0.0.1:0, which means a free port chosen by the runtime at the
# first apply and kept in the data dir (file "listen") for every later start; the endpoint output reads
# it back, so it is in Terraform's state. Set listen to a fixed host:port to choose it yourself.

terraform {
  required_version = ">= 1.4"
}

variable "token" {
  type        = string
  sensitive   = true
  description = "Bearer token of the runtime's management API; appfleet passes it. Written to a 0600 file, never on a command line."
}

variable "environment" {
  type        = string
  description = "Name of the appfleet environment (appfleet passes it)."
}

variable "fleet" {
  type        = string
  description = "Name of the appfleet fleet (appfleet passes it)."
}

variable "appfleet_binary" {
  type        = string
  description = "Path of the appfleet binary that runs the runtime (appfleet passes its own)."
}

variable "idle_timeout" {
  type        = string
  default     = "10m"
  description = "spec.runtime.idleTimeout (appfleet passes it)."
}

variable "max_apps" {
  type        = number
  default     = 1000
  description = "spec.runtime.maxApps (appfleet passes it)."
}

variable "listen" {
  type        = string
  default     = "127.0.0.1:0"
  description = "host:port of the management API; port 0 is a free port chosen at the first apply and kept."
}

variable "log_level" {
  type        = string
  default     = "info"
  description = "The runtime's log level: debug, info, warn or error."
}

variable "data_dir" {
  type        = string
  default     = ""
  description = "Where the runtime keeps its apps and data; default: runtime-data/ in the working dir appfleet gives Terraform."
}

locals {
  # Not data/: in appfleet's state dir that is where a local environment's runtime keeps its data.
  data_dir = var.data_dir != "" ? var.data_dir : "${abspath(path.root)}/runtime-data"
}

resource "terraform_data" "server" {
  # Any change restarts the runtime on the same data dir.
  triggers_replace = {
    binary       = var.appfleet_binary
    listen       = var.listen
    idle_timeout = var.idle_timeout
    max_apps     = var.max_apps
    log_level    = var.log_level
    data_dir     = local.data_dir
    name         = "${var.fleet}-${var.environment}"
    # A new token (a declared spec.runtime.token that changed) restarts the runtime with it.
    token = sha256(var.token)
  }
  # What the destroy provisioner needs: it may read only self.
  input = {
    data_dir = local.data_dir
    stop     = "${abspath(path.module)}/stop.sh"
  }

  provisioner "local-exec" {
    environment = {
      APPFLEET_TOKEN = var.token
      BIN            = var.appfleet_binary
      DATA_DIR       = local.data_dir
      LISTEN         = var.listen
      IDLE_TIMEOUT   = var.idle_timeout
      MAX_APPS       = var.max_apps
      LOG_LEVEL      = var.log_level
      NAME           = "${var.fleet}-${var.environment}"
      STOP           = "${abspath(path.module)}/stop.sh"
    }
    command = "/bin/sh '${abspath(path.module)}/start.sh'"
  }

  provisioner "local-exec" {
    when = destroy
    environment = {
      DATA_DIR = self.input.data_dir
    }
    command = "/bin/sh '${self.input.stop}'"
  }
}

output "endpoint" {
  description = "Base URL of the runtime's management API."
  # The address is known once the runtime listens: the reference to the server's id makes Terraform read
  # the file after the server was created, not when it plans.
  value = terraform_data.server.id == "" ? null : "http://${trimspace(file("${local.data_dir}/listen"))}"
}
