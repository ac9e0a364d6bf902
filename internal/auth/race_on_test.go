//go:build race

package auth_test

// raceEnabled: the race detector changes scheduling and allocation, so
// allocation counts are only checked without it.
const raceEnabled = true
