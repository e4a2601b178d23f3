# Packer: gate an EFA GPU AMI on efa-doctor. The build fails when a check fails (exit 1) or
# efa-doctor cannot judge the image (exit 2), and the JUnit report is downloaded either way.
#
# The build instance is launched without EFA interfaces, so the gate judges what the image
# holds (`--profile bake`: kernel modules on disk, the NVIDIA driver, libfabric and its efa
# provider, aws-ofi-nccl, NIXL, boot-time huge pages), not devices that are not attached.
packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "source_ami" {
  type = string
}

locals {
  built = formatdate("YYYYMMDDhhmmss", timestamp())
}

source "amazon-ebs" "p5" {
  ami_name      = "eks-gpu-efa-${local.built}"
  instance_type = "p5.48xlarge"
  region        = "us-east-2"
  source_ami    = var.source_ami
  ssh_username  = "ec2-user"
}

build {
  sources = ["source.amazon-ebs.p5"]

  provisioner "file" {
    source      = "efa-doctor"
    destination = "/tmp/efa-doctor"
  }

  # Packer runs these lines as one `/bin/sh -e` script, which stops at the first failing
  # command: `|| rc=$?` keeps a failing gate from stopping it before the report is
  # downloaded, and the exit code waits in a file for the last provisioner. The JUnit report
  # goes to stdout, redirected by the SSH user's shell, so that user can download it (a file
  # efa-doctor writes as root is 0600); the table goes to stderr, into Packer's build log.
  provisioner "shell" {
    inline = [
      "sudo install -m 0755 /tmp/efa-doctor /usr/local/bin/efa-doctor",
      "rc=0; sudo efa-doctor check --profile bake --output /dev/stderr --junit - > /tmp/efa-doctor.xml || rc=$?; echo $rc > /tmp/efa-doctor.rc",
    ]
  }

  provisioner "file" {
    direction   = "download"
    source      = "/tmp/efa-doctor.xml"
    destination = "reports/efa-doctor.xml"
  }

  # Fail the build now that the report is safe.
  provisioner "shell" {
    inline = [
      "rc=$(cat /tmp/efa-doctor.rc); [ \"$rc\" = 0 ] || { echo \"AMI gate: efa-doctor exited $rc (1: a check failed, 2: the image could not be judged); see reports/efa-doctor.xml\" >&2; exit \"$rc\"; }",
    ]
  }
}
