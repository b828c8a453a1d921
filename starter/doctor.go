package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/doctor"
)

// errDoctor is the doctor's failure: the report above it says what failed.
var errDoctor = errors.New("some checks failed (each FAIL above says how to fix it)")

func doctorCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("doctor", flag.ExitOnError)
	order := fs.String("order", "", "the Amazon order id getOrder is tried on (default: the newest of the last 30 days)")
	timeout := fs.Duration("timeout", 20*time.Second, "how long each group of checks (SP-API, KMS, database, Temporal, notifications) may take")
	fs.Parse(args)
	if fs.NArg() != 0 {
		return errors.New("usage: starter doctor [-order amazonOrderId] [-timeout DURATION]")
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Printf("[%-4s] settings: %v\n       fix: correct the setting it names (`worker -help` lists them all)\n", doctor.Fail, err)
		return errDoctor
	}
	rs := doctor.Run(ctx, cfg, doctor.Options{OrderID: *order, Timeout: *timeout})
	doctor.Print(os.Stdout, rs)
	if doctor.Failed(rs) {
		return errDoctor
	}
	return nil
}
