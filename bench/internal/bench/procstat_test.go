package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses, as /proc allows.
	const stat = "4242 (herald (x) y) S 1 4242 4242 0 -1 4194560 1861 0 0 0 1234 567 0 0 20 0 9 0 18035 1298362368 4410 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n"
	ticks, err := parseStatCPU([]byte(stat))
	if err != nil || ticks != 1234+567 {
		t.Fatalf("ticks %d, err %v; want 1801", ticks, err)
	}
	for _, bad := range []string{"", "1 (x S 1 2", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 a 5 0"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) should fail", bad)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	const status = "Name:\therald\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1300000 kB\nVmRSS:\t   17640 kB\nRssAnon:\t    9000 kB\nThreads:\t9\n"
	rss, err := parseStatusRSS([]byte(status))
	if err != nil || rss != 17640*1024 {
		t.Fatalf("rss %d, err %v", rss, err)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tlots kB\n"} {
		if _, err := parseStatusRSS([]byte(bad)); err == nil {
			t.Errorf("parseStatusRSS(%q) should fail", bad)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.CPU < 0 || s.CPU > time.Hour {
		t.Errorf("implausible sample %+v", s)
	}
}
