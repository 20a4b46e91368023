// Command chartdoc writes charts/trigger-api/README.md from Chart.yaml and the comments of
// values.yaml. Run it from the repository's root: go run ./deploy/tests/chart/cmd/chartdoc
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trigger-api/trigger-api/deploy/tests/chart/chartdoc"
)

func main() {
	dir := flag.String("chart", "charts/trigger-api", "the chart's directory")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "chartdoc:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	readme, err := chartdoc.Generate(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "README.md"), readme, 0o644)
}
