module github.com/trigger-api/trigger-api/worker

go 1.26

require (
	github.com/trigger-api/trigger-api/pkg v0.0.0
	go.uber.org/zap v1.28.0
)

require (
	github.com/kelseyhightower/envconfig v1.4.0 // indirect
	go.uber.org/multierr v1.10.0 // indirect
)

replace github.com/trigger-api/trigger-api/pkg => ../pkg
