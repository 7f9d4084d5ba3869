################################################################################
# State moves: resources whose address changed, so that applying a newer
# version of the module over an existing deployment moves them in the state
# instead of replacing them. Keep each block for as long as a deployment from
# before it may still be upgraded (removing one is a breaking change).
################################################################################

# One compute-environment resource (for_each) instead of the chosen type's and
# the On-Demand fallback's (count) blocks.
moved {
  from = aws_batch_compute_environment.this
  to   = aws_batch_compute_environment.this["primary"]
}

moved {
  from = aws_batch_compute_environment.on_demand[0]
  to   = aws_batch_compute_environment.this["on_demand"]
}
