package devstack

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// The readers below are Linux-only (/proc) and answer zero or nothing elsewhere, or when the
// process has gone: the benchmark samples processes that its chaos mode kills.

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat and /proc/stat (100 on Linux).
const clockTicks = 100

// CPUSeconds returns the user plus system CPU time a process has used.
func CPUSeconds(pid int) float64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ')'.
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 {
		return 0
	}
	f := strings.Fields(string(raw[end+1:]))
	// utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the ')'.
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTicks
}

// Memory returns a process's resident set (VmRSS) and its peak (VmHWM), in KiB.
func Memory(pid int) (rssKB, hwmKB int64) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &rssKB
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &hwmKB
		default:
			continue
		}
		if fs := strings.Fields(line); len(fs) >= 2 {
			*dst, _ = strconv.ParseInt(fs[1], 10, 64)
		}
	}
	return rssKB, hwmKB
}

// PidsByComm lists the processes whose command name is comm (e.g. "postgres"); the kernel keeps
// the first 15 bytes of a name, so comm is cut to that length before comparing.
func PidsByComm(comm string) []int {
	if len(comm) > 15 {
		comm = comm[:15]
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil && strings.TrimSpace(string(b)) == comm {
			out = append(out, pid)
		}
	}
	return out
}

// MachineCPU returns the busy and total CPU seconds of the whole machine since boot, summed over
// its CPUs (the first line of /proc/stat; idle and iowait are not busy).
func MachineCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, 0
	}
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		total += x
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy / clockTicks, total / clockTicks
}
