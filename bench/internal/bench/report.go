package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteJSON writes r as one indented JSON object.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r for people.
func WriteTable(w io.Writer, r *Result) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-13s %s\n", label, fmt.Sprintf(format, args...))
	}
	title := "herald-bench " + r.Scenario
	if r.Label != "" {
		title += " [" + r.Label + "]"
	}
	fmt.Fprintf(w, "%s → %s (reader %s)\n", title, r.Target, r.Reader)
	fmt.Fprintf(w, "  %s\n\n", describe(r))

	c := r.Connections
	if r.Scenario == ScenarioREST && c.Target == 0 {
		line("connections", "none (no subscribers)")
	} else {
		line("connections", "%d/%d established in %s (%.0f/s), %d failed; handshake p50 %s p99 %s max %s",
			c.Established, c.Target, secs(c.Seconds), c.PerSecond, c.Failed,
			ms(c.Handshake.P50MS), ms(c.Handshake.P99MS), ms(c.Handshake.MaxMS))
	}
	if len(c.PerNode) > 1 {
		parts := make([]string, len(c.PerNode))
		for i, n := range c.PerNode {
			parts[i] = fmt.Sprint(n)
		}
		line("", "over %d nodes: %s", len(c.PerNode), strings.Join(parts, " + "))
	}
	if c.LocalAddrs > 0 {
		line("", "spread over %d local addresses", c.LocalAddrs)
	}
	if c.ClosedByServer > 0 || c.PusherErrors > 0 {
		line("", "%d closed by the server during the run, %d pusher:error messages", c.ClosedByServer, c.PusherErrors)
	}
	if p := r.Publish; p != nil {
		line("publish", "%d requests (%d channel events) in %s (%.0f/s, %s), %d errors; round trip p50 %s p99 %s",
			p.Requests, p.ChannelEvents, secs(p.Seconds), p.PerSecond, p.Mode, p.Errors, ms(p.Latency.P50MS), ms(p.Latency.P99MS))
		if p.Endpoints > 1 {
			line("", "publishers spread over %d REST endpoints", p.Endpoints)
		}
	}
	if rs := r.REST; rs != nil {
		line("rest", "%d requests to %s (%d events) in %s = %s requests/s, %s events/s, %d errors; request p50 %s p99 %s max %s",
			rs.Requests, rs.Endpoint, rs.Events, secs(rs.Seconds), count(rs.RequestsPerSecond), count(rs.EventsPerSecond), rs.Errors,
			ms(rs.Latency.P50MS), ms(rs.Latency.P99MS), ms(rs.Latency.MaxMS))
		cpu := ""
		if r.Server != nil {
			cpu = fmt.Sprintf("server %.2fµs/request, %.2fµs/event; ", rs.ServerCPUPerRequestUS, rs.ServerCPUPerEventUS)
		}
		line("", "%sclient %.2fµs/request, %.2fµs/event", cpu, rs.ClientCPUPerRequestUS, rs.ClientCPUPerEventUS)
		if rs.Endpoints > 1 {
			line("", "publishers spread over %d REST endpoints", rs.Endpoints)
		}
	}
	if pr := r.Presence; pr != nil {
		line("churn", "%d joins (%.0f/s), %d failed; join p50 %s p99 %s max %s",
			pr.Joins, pr.JoinsPerSecond, pr.JoinErrors, ms(pr.JoinLatency.P50MS), ms(pr.JoinLatency.P99MS), ms(pr.JoinLatency.MaxMS))
	}
	if d := r.Delivery; d != nil {
		pct := 100.0
		if d.Expected > 0 {
			pct = 100 * float64(d.Unique) / float64(d.Expected)
		}
		unit := "messages"
		if r.Scenario == ScenarioPresence {
			unit = "member events"
		}
		line("delivered", "%d/%d %s (%.3f%%) in %s = %s/s", d.Unique, d.Expected, unit, pct, secs(d.Seconds), count(d.PerSecond))
		verdict := "COMPLETE"
		if !d.Complete {
			verdict = "INCOMPLETE"
		}
		line("completeness", "%s: missing %d, duplicate %d, out of order %d, unexpected %d",
			verdict, d.Missing, d.Duplicate, d.OutOfOrder, d.Unexpected)
	}
	if l := r.Latency; l != nil && l.Count > 0 {
		name := "latency"
		if r.Scenario == ScenarioSlow {
			name = "fast latency"
		}
		if r.Scenario == ScenarioPresence {
			name = "member_added"
		}
		line(name, "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d)",
			ms(l.P50MS), ms(l.P90MS), ms(l.P99MS), ms(l.P999MS), ms(l.MaxMS), l.Count)
	}
	if pr := r.Presence; pr != nil && pr.RemovedLatency.Count > 0 {
		l := pr.RemovedLatency
		line("member_remove", "p50 %s  p90 %s  p99 %s  max %s  (n=%d)", ms(l.P50MS), ms(l.P90MS), ms(l.P99MS), ms(l.MaxMS), l.Count)
	}
	if s := r.Slow; s != nil {
		other := ""
		if len(s.ClosedOther) > 0 {
			var codes []string
			for code, n := range s.ClosedOther {
				codes = append(codes, fmt.Sprintf("%s×%d", code, n))
			}
			sort.Strings(codes)
			other = ", other codes " + strings.Join(codes, " ")
		}
		line("slow clients", "%d: %d closed with 4100, %d dropped without a close frame, %d still open%s (%d events reached them; ~%s sent to each)",
			s.Conns, s.Closed4100, s.Dropped, s.StillOpen, other, s.Events, bytesStr(float64(s.BytesPerConn)))
	}
	if r.Scenario == ScenarioSlow {
		p := r.Params
		line("compare with", "herald-bench fanout --conns %d --events %d --size %d --rate %g --publishers %d",
			p.Conns, p.Events, p.Size, p.Rate, p.Publishers)
	}
	if id := r.Idle; id != nil {
		line("held", "%d/%d alive after %s, %d pongs sent", id.Alive, c.Established, secs(id.HeldSeconds), id.PongsSent)
	}
	if s := r.Server; s != nil {
		line("server", "%s", procLine(s, r.Scenario))
	}
	for i := range r.ServerNodes {
		line(fmt.Sprintf("  node %d", i+1), "%s", procLine(&r.ServerNodes[i], r.Scenario))
	}
	if rd := r.Redis; rd != nil {
		line("redis", "%s", redisLine(rd))
	}
	line("client", "%s", procLine(&r.Client, r.Scenario))
	for _, e := range r.Errors {
		line("error", "%s", e)
	}
	verdict := "COMPLETE"
	switch {
	case r.TimedOut:
		verdict = "TIMED OUT"
	case !r.Complete:
		verdict = "INCOMPLETE"
	}
	line("result", "%s in %s", verdict, secs(r.Seconds))
}

func describe(r *Result) string {
	p := r.Params
	mode := "burst"
	if p.Rate > 0 {
		mode = fmt.Sprintf("paced at %.0f/s", p.Rate)
	}
	switch r.Scenario {
	case ScenarioFanout:
		return fmt.Sprintf("%d subscribers of one channel, %d events by %d publishers (%s), %d-byte data", p.Conns, p.Events, p.Publishers, mode, p.Size)
	case ScenarioSlow:
		return fmt.Sprintf("%d subscribers + %d that never read, one channel, %d events by %d publishers (%s), %d-byte data", p.Conns, p.Slow, p.Events, p.Publishers, mode, p.Size)
	case ScenarioChannels:
		return fmt.Sprintf("%d connections × %d channels each, %d events per channel by %d publishers (%s), %d-byte data", p.Conns, p.ChannelsPerConn, p.Events, p.Publishers, mode, p.Size)
	case ScenarioPresence:
		return fmt.Sprintf("%d watchers on %d presence channels, %d churners × %d join/leave cycles (%s)", p.Conns, p.PresenceChannels, p.Churners, p.Cycles, mode)
	case ScenarioConnect:
		return fmt.Sprintf("%d connections, %d dials in flight, subscribe %v", p.Conns, p.Concurrency, p.Subscribe)
	case ScenarioIdle:
		return fmt.Sprintf("%d connections held %s, subscribe %v", p.Conns, secs(p.DurationSeconds), p.Subscribe)
	case ScenarioREST:
		each := "1 event each"
		if p.Batch > 1 {
			each = fmt.Sprintf("batches of %d events", p.Batch)
		}
		return fmt.Sprintf("%d trigger requests (%s) by %d publishers (%s), %d-byte data, %d subscribers", p.Requests, each, p.Publishers, mode, p.Size, p.Conns)
	}
	return ""
}

// redisLine is the Redis commands of the measured phase: in all, per unit,
// and by command.
func redisLine(rd *RedisResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", rd.Addr)
	if rd.Version != "" {
		fmt.Fprintf(&b, " (%s)", rd.Version)
	}
	if rd.Error != "" {
		fmt.Fprintf(&b, ": %s", rd.Error)
		return b.String()
	}
	fmt.Fprintf(&b, ": %d commands in %s", rd.Commands, secs(rd.Seconds))
	if rd.Unit != "" {
		fmt.Fprintf(&b, " = %.2f/%s", rd.PerUnit, rd.Unit)
	}
	fmt.Fprintf(&b, ", cpu %.2fs", rd.CPUSeconds)
	cmds := topCommands(rd.ByCommand)
	if len(cmds) > 0 {
		b.WriteString(";")
	}
	for i, c := range cmds {
		if i == 8 {
			fmt.Fprintf(&b, " …%d more", len(cmds)-i)
			break
		}
		fmt.Fprintf(&b, " %s %d", c, rd.ByCommand[c])
		if rd.Unit != "" && rd.PerUnit > 0 {
			fmt.Fprintf(&b, " (%.2f)", float64(rd.ByCommand[c])*rd.PerUnit/float64(rd.Commands))
		}
	}
	return b.String()
}

func procLine(p *ProcResult, scenario string) string {
	var b strings.Builder
	phase := "delivery"
	switch scenario {
	case ScenarioConnect:
		phase = "connecting"
	case ScenarioIdle:
		phase = "the hold"
	case ScenarioPresence:
		phase = "churn"
	case ScenarioREST:
		phase = "publishing"
	}
	if len(p.PIDs) > 0 {
		pids := make([]string, len(p.PIDs))
		for i, pid := range p.PIDs {
			pids[i] = fmt.Sprint(pid)
		}
		fmt.Fprintf(&b, "%d nodes (pids %s): cpu %.2fs during %s", len(p.PIDs), strings.Join(pids, ", "), p.CPUSeconds, phase)
	} else {
		fmt.Fprintf(&b, "pid %d: cpu %.2fs during %s", p.PID, p.CPUSeconds, phase)
	}
	if p.Unit != "" {
		fmt.Fprintf(&b, " = %.2fµs/%s", p.CPUPerUnitUS, p.Unit)
	}
	fmt.Fprintf(&b, "; rss %s → %s connected (%s/conn) → %s at end",
		bytesStr(float64(p.RSSStart)), bytesStr(float64(p.RSSConnected)), bytesStr(p.RSSPerConn), bytesStr(float64(p.RSSEnd)))
	return b.String()
}

func ms(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	case v >= 1:
		return fmt.Sprintf("%.2fms", v)
	}
	return fmt.Sprintf("%.0fµs", v*1000)
}

func secs(s float64) string { return fmt.Sprintf("%.2fs", s) }

func count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func bytesStr(v float64) string {
	neg := ""
	if v < 0 {
		neg, v = "-", -v
	}
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%s%.2fGiB", neg, v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%s%.1fMiB", neg, v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%s%.1fKiB", neg, v/(1<<10))
	}
	return fmt.Sprintf("%s%.0fB", neg, v)
}
