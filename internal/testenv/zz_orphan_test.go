package testenv

import (
	"testing"
	"time"
)

func TestZZOrphan(t *testing.T) {
	KMSForTest(t)
	time.Sleep(time.Minute)
}
