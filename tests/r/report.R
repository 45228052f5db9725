# Reference values for exresearch.meta.pool_estimates (inverse-variance pooling of
# estimates with standard errors; exresearch.report.pool_estimates is the same routine
# limited to DL/FE), from metafor. Run: Rscript tests/r/report.R > tests/data/report_reference.json
suppressPackageStartupMessages(library(metafor))
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
dat$sei <- sqrt(dat$vi)
out <- list(data = list(yi = as.numeric(dat$yi), sei = as.numeric(dat$sei)))
for (m in c("DL", "FE", "REML")) {
  res <- rma(yi, sei = sei, data = dat, method = m,
             control = list(threshold = 1e-12, maxiter = 10000))
  pr <- predict(res)
  out[[m]] <- list(estimate = as.numeric(res$b), se = res$se, ci_low = res$ci.lb,
                   ci_high = res$ci.ub, z = res$zval, p_val = res$pval, tau2 = res$tau2,
                   i2 = res$I2 / 100, q = res$QE, q_p = res$QEp,
                   pi_low = as.numeric(if (is.null(pr$pi.lb)) pr$ci.lb else pr$pi.lb),
                   pi_high = as.numeric(if (is.null(pr$pi.ub)) pr$ci.ub else pr$pi.ub))
}
cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "\n")
