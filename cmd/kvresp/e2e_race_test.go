//go:build race

package main_test

// raceEnabled tells TestMain to build the server under test with -race as well.
const raceEnabled = true
