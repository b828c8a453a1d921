package workflows

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReplayExportedHistories replays histories an operator exported from
// production before an upgrade (deploy/README.md, "Upgrade"): every *.json in
// the directory DPP_REPLAY_DIR, written decoded by
//
//	temporal workflow show -w <id> -o json --codec-endpoint .../codec --codec-auth "Bearer $DPP_CODEC_TOKEN"
//
// A change in this build that would break a run still open in production fails
// here, naming the file. Without DPP_REPLAY_DIR there is nothing to replay;
// TestReplaySavedHistories covers the saved ones in every `make test`.
func TestReplayExportedHistories(t *testing.T) {
	dir := os.Getenv("DPP_REPLAY_DIR")
	if dir == "" {
		t.Skip("DPP_REPLAY_DIR is not set: this replays histories exported from production (deploy/README.md, Upgrade)")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("DPP_REPLAY_DIR %s holds no *.json histories (%v)", dir, err)
	}
	// Decoded histories need no key; the codec is there so replay decodes the
	// way the worker does (plain payloads decode to themselves).
	c := replayCodec(t)
	covered := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { replayFile(t, f, false, c, covered) })
	}
	t.Logf("replayed %d histories from %s", len(files), dir)
}
