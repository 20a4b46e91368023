module github.com/trigger-api/trigger-api/deploy/devstack

go 1.26

require github.com/trigger-api/trigger-api/pkg v0.0.0

replace github.com/trigger-api/trigger-api/pkg => ../../pkg
