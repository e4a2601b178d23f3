# Packer: gate an EFA GPU AMI on efa-doctor. The build fails when a check fails (exit 1) or
# efa-doctor cannot judge the node (exit 2); the JUnit report is downloaded either way.
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

source "amazon-ebs" "p5" {
  ami_name      = "eks-gpu-efa-{{timestamp}}"
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

  provisioner "shell" {
    inline = [
      "sudo install -m 0755 /tmp/efa-doctor /usr/local/bin/efa-doctor",
      "sudo efa-doctor check --format junit --output /tmp/efa-doctor.xml --sample 5 || echo $? > /tmp/efa-doctor.rc",
      "sudo efa-doctor --format human --color never",
    ]
  }

  provisioner "file" {
    direction   = "download"
    source      = "/tmp/efa-doctor.xml"
    destination = "reports/efa-doctor.xml"
  }

  # Fail the build after the report is safe.
  provisioner "shell" {
    inline = ["test ! -s /tmp/efa-doctor.rc"]
  }
}
