package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEQuickStart: the README's quick start is this program's code,
// character for character, so the README shows code that compiles.
func TestREADMEQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	const open = "```go\ntype Cart struct{ Items []string }"
	i := strings.Index(string(readme), open)
	if i < 0 {
		t.Fatal("the README has no quick start beginning with type Cart")
	}
	block := string(readme[i+len("```go\n"):])
	block = block[:strings.Index(block, "```")]
	if !strings.HasSuffix(string(src), block) {
		t.Fatal("the README's quick start and examples/quickstart/main.go differ: change both")
	}
}
