package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// Registry is the part of a worker that workflows register with.
type Registry interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
}

// Register registers every workflow under its stable name.
func Register(r Registry) {
	r.RegisterWorkflowWithOptions(OrderLifecycle, registerOpts(OrderLifecycleName))
	r.RegisterWorkflowWithOptions(OrderSync, registerOpts(OrderSyncName))
	r.RegisterWorkflowWithOptions(TaxRecordSweep, registerOpts(TaxRecordSweepName))
	r.RegisterWorkflowWithOptions(RetentionAudit, registerOpts(RetentionAuditName))
}

func registerOpts(name string) workflow.RegisterOptions { return workflow.RegisterOptions{Name: name} }
