//go:build unix

package bench

import (
	"fmt"
	"syscall"
)

// raiseFileLimit makes sure the process may open need descriptors.
func raiseFileLimit(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // not knowable; let dials fail if it is too low
	}
	if lim.Cur >= uint64(need) {
		return nil
	}
	if lim.Max < uint64(need) {
		lim.Max = uint64(need)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("%d connections need %d file descriptors and the limit is lower; raise it (ulimit -n): %w", need-64, need, err)
	}
	return nil
}
