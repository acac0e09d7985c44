// Package enginetest helps test what runs the engine: a fake provider whose environments are real
// runtimes (apphost) served in the test's own process, so that plans and applies are real for apps while
// environments need no processes, containers or Terraform.
//
// It is for tests only and must never be registered in a build of the command.
package enginetest
