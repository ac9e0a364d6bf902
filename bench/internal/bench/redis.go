package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A cluster's nodes talk through Redis; what that costs Redis is read from
// INFO (the commandstats and cpu sections) before and after the measured
// phase, over a plain RESP connection: no client library.

// RedisStats is one reading of a Redis server's INFO.
type RedisStats struct {
	Version string
	// Calls by command, as commandstats names them: "publish",
	// "evalsha", "client|setname", …
	Calls map[string]int64
	CPU   float64 // used_cpu_sys + used_cpu_user, seconds
}

// ownINFOCalls is how many INFO commands herald-bench itself makes between
// two readings of commandstats: the first reading (a command's statistics
// count it once it has run, so a reading never counts itself).
const ownINFOCalls = 1

// ReadRedisStats sends INFO all to the Redis at addr and parses the answer.
func ReadRedisStats(ctx context.Context, addr string) (RedisStats, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return RedisStats{}, fmt.Errorf("redis %s: %w", addr, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, "*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n"); err != nil {
		return RedisStats{}, fmt.Errorf("redis %s: %w", addr, err)
	}
	info, err := readBulk(bufio.NewReader(nc))
	if err != nil {
		return RedisStats{}, fmt.Errorf("redis %s: INFO: %w", addr, err)
	}
	return parseInfo(info)
}

// readBulk reads one RESP reply that must be a bulk string.
func readBulk(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 || n > 64<<20 {
			return "", fmt.Errorf("bad bulk length %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// parseInfo reads the fields of INFO that matter here.
func parseInfo(info string) (RedisStats, error) {
	s := RedisStats{Calls: map[string]int64{}}
	var cpuSys, cpuUser float64
	sawCmd := false
	for line := range strings.Lines(info) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case key == "redis_version":
			s.Version = val
		case key == "used_cpu_sys":
			cpuSys, _ = strconv.ParseFloat(val, 64)
		case key == "used_cpu_user":
			cpuUser, _ = strconv.ParseFloat(val, 64)
		case strings.HasPrefix(key, "cmdstat_"):
			calls, err := parseCmdstat(val)
			if err != nil {
				return RedisStats{}, fmt.Errorf("%s: %w", key, err)
			}
			s.Calls[strings.TrimPrefix(key, "cmdstat_")] = calls
			sawCmd = true
		}
	}
	if !sawCmd {
		return RedisStats{}, errors.New("no cmdstat_ lines in INFO (commandstats section missing)")
	}
	s.CPU = cpuSys + cpuUser
	return s, nil
}

// parseCmdstat returns calls from "calls=12,usec=34,usec_per_call=2.83,…".
func parseCmdstat(val string) (int64, error) {
	for field := range strings.SplitSeq(val, ",") {
		k, v, _ := strings.Cut(field, "=")
		if k == "calls" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("calls %q", v)
			}
			return n, nil
		}
	}
	return 0, errors.New("no calls field")
}

// diffCalls is after − before by command, herald-bench's own INFO calls
// taken out, commands that did not run left out.
func diffCalls(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for cmd, n := range after {
		d := n - before[cmd]
		if cmd == "info" {
			d -= ownINFOCalls
		}
		if d > 0 {
			out[cmd] = d
		}
	}
	return out
}

// RedisResult is what Redis did during the measured phase.
type RedisResult struct {
	Addr    string  `json:"addr"`
	Version string  `json:"version,omitempty"`
	Seconds float64 `json:"seconds"` // between the two readings
	// Commands is every command Redis ran in that time, from every client
	// (the nodes' background work included), herald-bench's own INFO not.
	Commands  int64            `json:"commands"`
	ByCommand map[string]int64 `json:"by_command"`
	// PerUnit is Commands per published channel event (message scenarios)
	// or per presence join, each join with its leave (presence).
	PerUnit    float64 `json:"per_unit,omitempty"`
	Unit       string  `json:"unit,omitempty"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Error      string  `json:"error,omitempty"`
}

// redisWatch reads Redis's statistics around the measured phase.
type redisWatch struct {
	addr   string
	before RedisStats
	t0     time.Time
	err    error
}

// begin takes the first reading; without an address it does nothing.
func (rw *redisWatch) begin(ctx context.Context) {
	if rw.addr == "" {
		return
	}
	rw.before, rw.err = ReadRedisStats(ctx, rw.addr)
	rw.t0 = time.Now()
}

// end takes the second reading and reports the difference, or nil
// without an address.
func (rw *redisWatch) end() *RedisResult {
	if rw.addr == "" {
		return nil
	}
	r := &RedisResult{Addr: rw.addr, Version: rw.before.Version, Seconds: time.Since(rw.t0).Seconds()}
	if rw.err != nil {
		r.Error = rw.err.Error()
		return r
	}
	// The run's context may be over (a timeout): the reading is quick, and
	// still worth having.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	after, err := ReadRedisStats(ctx, rw.addr)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.ByCommand = diffCalls(rw.before.Calls, after.Calls)
	for _, n := range r.ByCommand {
		r.Commands += n
	}
	r.CPUSeconds = after.CPU - rw.before.CPU
	return r
}

// per sets the commands per unit of work (nil-safe).
func (r *RedisResult) per(units float64, unit string) {
	if r == nil || units <= 0 || r.ByCommand == nil {
		return
	}
	r.PerUnit = float64(r.Commands) / units
	r.Unit = unit
}

// topCommands lists commands by calls, most first (then by name).
func topCommands(by map[string]int64) []string {
	cmds := make([]string, 0, len(by))
	for c := range by {
		cmds = append(cmds, c)
	}
	sort.Slice(cmds, func(i, j int) bool {
		if by[cmds[i]] != by[cmds[j]] {
			return by[cmds[i]] > by[cmds[j]]
		}
		return cmds[i] < cmds[j]
	})
	return cmds
}
