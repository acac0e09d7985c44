// Package terraform is the provider that runs an environment's runtime on whatever infrastructure the
// user's Terraform module makes, through the terraform binary (github.com/hashicorp/terraform-exec) and
// its JSON plans (github.com/hashicorp/terraform-json).
//
// Each environment has a working dir, <state-dir>/environments/<name>/ (mode 0700), holding a generated
// root module (main.tf.json) that calls the user's module. The root passes the module the runtime's
// token as the sensitive variable "token", through a 0600 var file (never a command line or the
// environment), plus "environment", "fleet", "appfleet_binary", "idle_timeout" and "max_apps" where the
// module declares them (read with terraform-config-inspect), and spec.terraform.variables. It re-exports
// the module's "endpoint" output (required) and "token" (optional, sensitive). The token is generated
// once and kept in Terraform's state (a terraform_data resource that ignores later values), beside a
// record of the environment's spec: with a shared backend, a fresh checkout on another machine reads
// both back and plans what the machine that applied last would plan.
//
// Observe runs `terraform plan` (with refresh) and reads it through `terraform show -json`: Terraform's
// pending changes and drift become the environment's nested changes, the outputs its endpoint. A
// runtime whose endpoint does not answer while Terraform sees nothing to change is reported not running,
// with the module's resources to be replaced; Apply replaces them (-replace), which restarts the
// runtime where the module keeps its data. `terraform init` runs only when the module source, the
// backend, the module's own module calls or providers, or the binary changed.
//
// The provider never downloads Terraform, never prints the token (every value Terraform marks
// sensitive, and the token wherever it appears, is shown as "(sensitive)"), and never deletes data:
// destroy runs `terraform destroy` and then moves the working dir to <state-dir>/archive/environments/.
package terraform
