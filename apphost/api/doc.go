// Package api is the wire contract of a runtime's management API: the request and response bodies of
// /v1/..., the error shape, and a small client that the control plane uses to talk to a runtime.
//
// It is shared by the runtime (apphost) and the control plane (plan, providers, apply) so the two can
// never disagree on a field name. It must never import the control plane.
package api
