# The module the "cloud" environment applies. A real module would create a machine or a container
# service running `appfleet runtime serve`; this one stands in for it with terraform_data only, so the
# example needs no cloud account. appfleet reads two outputs: endpoint and token (sensitive).

terraform {
  required_version = ">= 1.4"
}

variable "size" {
  type        = string
  default     = "small"
  description = "Size of the machine the runtime would run on."
}

variable "listen" {
  type        = string
  default     = "127.0.0.1:7431"
  description = "Address the runtime's management API answers on."
}

resource "terraform_data" "runtime" {
  input = {
    size   = var.size
    listen = var.listen
  }
}

output "endpoint" {
  value       = "http://${terraform_data.runtime.output.listen}"
  description = "Base URL of the runtime's management API."
}

output "token" {
  value       = sha256(terraform_data.runtime.id)
  sensitive   = true
  description = "Bearer token of the runtime's management API."
}
