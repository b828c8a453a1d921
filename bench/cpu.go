package main

import (
	"os"
	"runtime"
	"time"

	"github.com/plusranger/dpp/internal/devstack"
)

type cpuSnap struct {
	at                          time.Time
	temporal, worker, kms, self float64
	postgres                    float64
	busy, total                 float64
}

func (e *env) cpuSnapshot() cpuSnap {
	s := cpuSnap{at: time.Now()}
	if e.temporal != nil {
		s.temporal = devstack.CPUSeconds(e.temporal.Pid())
	}
	if e.workers != nil {
		if p := e.workers.current(); p != nil && p.Alive() {
			s.worker = devstack.CPUSeconds(p.Pid())
		}
	}
	if e.kms != nil {
		if pid := e.kms.Pid(); pid != 0 {
			s.kms = devstack.CPUSeconds(pid)
		}
	}
	s.self = devstack.CPUSeconds(os.Getpid())
	for _, pid := range devstack.PidsByComm("postgres") {
		s.postgres += devstack.CPUSeconds(pid)
	}
	s.busy, s.total = devstack.MachineCPU()
	return s
}

// CPU is CPU seconds per process over a phase, and the share of the machine.
type CPU struct {
	Seconds          float64            `json:"wallSeconds"`
	ByProcess        map[string]float64 `json:"cpuSecondsByProcess"`
	MachineBusy      float64            `json:"machineBusyCPUSeconds"`
	MachineCapacity  float64            `json:"machineCapacityCPUSeconds"`
	MachineBusyShare float64            `json:"machineBusyShare"`
}

func cpuDelta(a, b cpuSnap) CPU {
	c := CPU{Seconds: b.at.Sub(a.at).Seconds(), ByProcess: map[string]float64{
		"temporal-server": b.temporal - a.temporal,
		"worker":          max(b.worker-a.worker, 0),
		"local-kms":       max(b.kms-a.kms, 0),
		"bench (sandbox, KMS proxy, driver, baseline worker)": b.self - a.self,
		"postgres (all backends, whole machine)":              b.postgres - a.postgres,
	}}
	c.MachineBusy = b.busy - a.busy
	c.MachineCapacity = c.Seconds * float64(runtime.NumCPU())
	if c.MachineCapacity > 0 {
		c.MachineBusyShare = c.MachineBusy / c.MachineCapacity
	}
	return c
}
