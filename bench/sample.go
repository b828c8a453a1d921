package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// orderTables hold an order's data in the sealed store.
var orderTables = []string{"orders", "data_keys", "sealed_fields", "invoices", "evidence_log"}

// DBPeak is the database at the moment most orders were live (sealed, not purged).
type DBPeak struct {
	At                 string           `json:"at"`
	LiveOrders         int              `json:"liveOrders"`
	Rows               map[string]int64 `json:"rows"`
	Bytes              map[string]int64 `json:"bytes"` // pg_total_relation_size: heap, indexes, TOAST
	RowsPerLiveOrder   float64          `json:"rowsPerLiveOrder"`
	BytesPerLiveOrder  float64          `json:"bytesPerLiveOrder"`
	DatabaseBytes      int64            `json:"databaseBytes"`
	DatabaseBytesEmpty int64            `json:"databaseBytesAtStart"`
	DBBytesPerLive     float64          `json:"databaseGrowthPerLiveOrder"`
}

// sampler polls the database and the worker once a second while orders run: stage
// counts for the progress bar, the worker's RSS, the database at peak, and
// pg_dumps taken while PII is sealed (for the leak check).
type sampler struct {
	pool  *pgxpool.Pool
	dsn   string
	snap  func() cpuSnap
	snaps []cpuSnap
	// total orders; onPeak runs once when all of them are sealed, invoiced and live.
	total     int
	onPeak    func()
	peakFired bool
	rssAtPeak int64
	workers   *workerSet
	markers   [][]byte

	mu                       sync.Mutex
	sealed, invoiced, purged int
	rssKB                    int64
	peak                     DBPeak
	emptyDB                  int64
	lastDump                 time.Time
	dumps                    int
	dumpHits                 int
	dumpExcerpt              string
	dumpErr                  error
	dbErrors                 int
}

func (s *sampler) counts() (sealed, invoiced, purged int, rssKB int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sealed, s.invoiced, s.purged, s.rssKB
}

func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) tick(ctx context.Context) {
	if s.snap != nil {
		c := s.snap()
		s.mu.Lock()
		s.snaps = append(s.snaps, c)
		s.mu.Unlock()
	}
	rss, _ := s.workers.sample()
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var sealed, invoiced, purged int
	err := s.pool.QueryRow(qctx, `SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM invoices),
		(SELECT count(*) FROM orders WHERE purged_at IS NOT NULL)`).Scan(&sealed, &invoiced, &purged)
	s.mu.Lock()
	s.rssKB = rss
	if err != nil {
		s.dbErrors++
		s.mu.Unlock()
		return
	}
	s.sealed, s.invoiced, s.purged = sealed, invoiced, purged
	live := sealed - purged
	firePeak := s.onPeak != nil && !s.peakFired && s.total > 0 && live == s.total && invoiced == s.total
	if firePeak {
		s.peakFired = true
		s.rssAtPeak = rss
	}
	// The peak: most live orders, and among those the moment with most invoices.
	newPeak := live > s.peak.LiveOrders || (live == s.peak.LiveOrders && live > 0 && int64(invoiced) > s.peak.Rows["invoices"])
	dump := newPeak && live > 0 && time.Since(s.lastDump) > 20*time.Second
	if dump {
		s.lastDump = time.Now()
	}
	s.mu.Unlock()
	if newPeak {
		if p, err := s.measure(qctx, live); err == nil {
			s.mu.Lock()
			if p.LiveOrders > s.peak.LiveOrders || (p.LiveOrders == s.peak.LiveOrders && p.Rows["invoices"] > s.peak.Rows["invoices"]) {
				s.peak = p
			}
			s.mu.Unlock()
		}
	}
	if firePeak {
		s.onPeak()
	}
	if dump {
		s.dump(ctx)
	}
}

func (s *sampler) measure(ctx context.Context, live int) (DBPeak, error) {
	p := DBPeak{At: time.Now().UTC().Format(time.RFC3339), LiveOrders: live, Rows: map[string]int64{}, Bytes: map[string]int64{}}
	var rows, bytes int64
	for _, t := range orderTables {
		var n, b int64
		if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+t+`), pg_total_relation_size('`+t+`')`).Scan(&n, &b); err != nil {
			return p, err
		}
		p.Rows[t], p.Bytes[t] = n, b
		rows += n
		bytes += b
	}
	if err := s.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&p.DatabaseBytes); err != nil {
		return p, err
	}
	p.DatabaseBytesEmpty = s.emptyDB
	if live > 0 {
		p.RowsPerLiveOrder = float64(rows) / float64(live)
		p.BytesPerLiveOrder = float64(bytes) / float64(live)
		p.DBBytesPerLive = float64(p.DatabaseBytes-s.emptyDB) / float64(live)
	}
	return p, nil
}

// dump runs pg_dump and looks for the marker (plain, and hex as pg_dump writes bytea).
func (s *sampler) dump(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pg_dump", "--no-owner", "--dbname", s.dsn).Output()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.dumpErr = fmt.Errorf("pg_dump: %w", err)
		}
		return
	}
	s.dumps++
	hits, excerpt := findMarkers(out, s.markers)
	s.dumpHits += hits
	if excerpt != "" && s.dumpExcerpt == "" {
		s.dumpExcerpt = excerpt
	}
}

// busyCPU sums the CPU used during the busy spans (each one-second sample
// weighted by how much of it the spans cover), so the idle waits for delivery
// and retention do not dilute the machine's load.
func (s *sampler) busyCPU(spans [][2]time.Time) CPU {
	s.mu.Lock()
	snaps := append([]cpuSnap(nil), s.snaps...)
	s.mu.Unlock()
	var acc cpuSnap
	var wall float64
	for i := 1; i < len(snaps); i++ {
		a, b := snaps[i-1], snaps[i]
		dt := b.at.Sub(a.at)
		if dt <= 0 {
			continue
		}
		var covered time.Duration
		for _, sp := range spans {
			lo, hi := maxTime(a.at, sp[0]), minTime(b.at, sp[1])
			if hi.After(lo) {
				covered += hi.Sub(lo)
			}
		}
		f := covered.Seconds() / dt.Seconds()
		if f <= 0 {
			continue
		}
		wall += covered.Seconds()
		acc.temporal += f * (b.temporal - a.temporal)
		acc.worker += f * max(b.worker-a.worker, 0)
		acc.kms += f * max(b.kms-a.kms, 0)
		acc.self += f * (b.self - a.self)
		acc.postgres += f * max(b.postgres-a.postgres, 0)
		acc.busy += f * (b.busy - a.busy)
	}
	var zero cpuSnap
	acc.at = zero.at.Add(time.Duration(wall * float64(time.Second)))
	return cpuDelta(zero, acc)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *sampler) peakDB() DBPeak {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// markerForms are the byte strings that reveal the marker: itself and its hex.
func markerForms(marker string) [][]byte {
	return [][]byte{[]byte(marker), []byte(hex.EncodeToString([]byte(marker)))}
}

func findMarkers(b []byte, forms [][]byte) (int, string) {
	hits, excerpt := 0, ""
	for _, m := range forms {
		n := bytes.Count(b, m)
		if n > 0 && excerpt == "" {
			i := bytes.Index(b, m)
			lo, hi := max(i-100, 0), min(i+40, len(b))
			excerpt = fmt.Sprintf("...%q...", b[lo:hi])
		}
		hits += n
	}
	return hits, excerpt
}

// ---------------------------------------------------------------- progress bar

// progress draws one line, rewritten with \r, only when stdout is a terminal.
type progress struct {
	tty   bool
	start time.Time
	mu    sync.Mutex
	last  int
}

func newProgress() *progress {
	fi, err := os.Stdout.Stat()
	return &progress{tty: err == nil && fi.Mode()&os.ModeCharDevice != 0, start: time.Now()}
}

func (p *progress) draw(label string, done, total int, extra string) {
	if !p.tty {
		return
	}
	const width = 30
	filled := 0
	if total > 0 {
		filled = min(width, done*width/total)
	}
	line := fmt.Sprintf("\r%-9s [%s%s] %d/%d %6.1fs %s", label, strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		done, total, time.Since(p.start).Seconds(), extra)
	p.mu.Lock()
	defer p.mu.Unlock()
	pad := ""
	if n := p.last - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.last = len(line)
	fmt.Print(line + pad)
}

func (p *progress) reset(label string) {
	p.mu.Lock()
	p.start = time.Now()
	p.mu.Unlock()
	_ = label
}

func (p *progress) done() {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Print("\r" + strings.Repeat(" ", p.last) + "\r")
	p.last = 0
}

// say prints a status line (above the progress bar when there is one).
func (p *progress) say(format string, args ...any) {
	p.done()
	fmt.Printf("bench: "+format+"\n", args...)
}
