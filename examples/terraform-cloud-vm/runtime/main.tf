# A Terraform module that runs an appfleet runtime on an AWS EC2 instance, following appfleet's module
# contract: it takes the runtime's token as the sensitive variable "token" and outputs "endpoint".
#
# The instance's user data downloads the appfleet binary, writes the token to a 0600 file and runs
# `appfleet runtime serve` as a systemd service with its data on a separate EBS volume, which survives a
# replaced instance. The management API listens on the instance's address behind a security group that
# admits only var.allowed_cidr; put TLS in front of it (a load balancer) for anything beyond a private
# network. Not applied by appfleet's tests (no cloud account there); `appfleet validate` checks it.

terraform {
  required_version = ">= 1.4"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "token" {
  type        = string
  sensitive   = true
  description = "Bearer token of the runtime's management API (appfleet passes it)."
}

variable "environment" {
  type        = string
  description = "Name of the appfleet environment (appfleet passes it)."
}

variable "fleet" {
  type        = string
  description = "Name of the appfleet fleet (appfleet passes it)."
}

variable "idle_timeout" {
  type    = string
  default = "10m"
}

variable "max_apps" {
  type    = number
  default = 1000
}

variable "region" {
  type = string
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "appfleet_version" {
  type        = string
  description = "Release of appfleet to install, such as v0.1.0."
}

variable "allowed_cidr" {
  type        = string
  description = "CIDR block allowed to reach the management API (port 7410)."
}

variable "data_size_gb" {
  type    = number
  default = 20
}

provider "aws" {
  region = var.region
}

data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"] # Debian
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
}

data "aws_availability_zones" "available" {
  state = "available"
}

resource "aws_security_group" "runtime" {
  name_prefix = "appfleet-${var.fleet}-${var.environment}-"
  ingress {
    description = "appfleet management API"
    from_port   = 7410
    to_port     = 7410
    protocol    = "tcp"
    cidr_blocks = [var.allowed_cidr]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# The data lives on its own volume: replacing the instance (a new appfleet version, a new token) keeps it.
resource "aws_ebs_volume" "data" {
  availability_zone = data.aws_availability_zones.available.names[0]
  size              = var.data_size_gb
  encrypted         = true
  tags              = { Name = "appfleet-${var.fleet}-${var.environment}-data" }
}

resource "aws_instance" "runtime" {
  ami                         = data.aws_ami.debian.id
  instance_type               = var.instance_type
  availability_zone           = data.aws_availability_zones.available.names[0]
  vpc_security_group_ids      = [aws_security_group.runtime.id]
  user_data_replace_on_change = true
  # The token reaches the instance in its user data (readable only through the EC2 API with this
  # account's credentials and from the instance itself); the script moves it to a 0600 file.
  user_data = templatefile("${path.module}/user-data.sh.tftpl", {
    version      = var.appfleet_version
    token        = var.token
    name         = "${var.fleet}-${var.environment}"
    idle_timeout = var.idle_timeout
    max_apps     = var.max_apps
  })
  metadata_options {
    http_tokens = "required" # IMDSv2 only
  }
  tags = { Name = "appfleet-${var.fleet}-${var.environment}" }
}

resource "aws_volume_attachment" "data" {
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data.id
  instance_id = aws_instance.runtime.id
}

output "endpoint" {
  description = "Base URL of the runtime's management API."
  value       = "http://${aws_instance.runtime.public_ip}:7410"
}
