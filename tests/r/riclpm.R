# Reference values for tests/test_riclpm.py (exresearch.riclpm).
#
# Run from the repository root:   Rscript tests/r/riclpm.R
# Reads tests/data/riclpm_complete.csv (150 units x 4 waves, no missing values) and
# tests/data/riclpm_missing.csv (120 units x 3 waves, 12% of values missing), both
# simulated RI-CLPM data written by exresearch's test helper (seeded), and writes
# tests/data/riclpm_reference.json. The Python tests never call R.
#
# Model: the RI-CLPM in the lavaan syntax of Mulder & Hamaker (2021), with the lagged
# paths constrained equal over waves (labels a, b, c, d), innovation (co)variances,
# wave-1 within (co)variances, random-intercept (co)variances and wave means free;
# full-information ML (missing = "ml"), observed information from the Hessian.
# The "_equal" entries constrain the innovation (co)variances to be equal over waves
# (labels vx, vy, cxy), exresearch's `equal_innovations=True`, the model the loop
# verdicts use.
# Packages: lavaan, jsonlite.

suppressPackageStartupMessages({
  library(jsonlite)
  library(lavaan)
})

riclpm_syntax <- function(T, equal = FALSE) {
  w <- seq_len(T)
  lines <- c(
    paste0("RIx =~ ", paste0("1*x", w, collapse = " + ")),
    paste0("RIy =~ ", paste0("1*y", w, collapse = " + ")),
    paste0("wx", w, " =~ 1*x", w),
    paste0("wy", w, " =~ 1*y", w),
    paste0("wx", w[-1], " ~ a*wx", w[-T], " + b*wy", w[-T]),
    paste0("wy", w[-1], " ~ c*wx", w[-T], " + d*wy", w[-T]),
    "wx1 ~~ wx1", "wy1 ~~ wy1", "wx1 ~~ wy1",
    if (equal) paste0("wx", w[-1], " ~~ vx*wx", w[-1]) else paste0("wx", w[-1], " ~~ wx", w[-1]),
    if (equal) paste0("wy", w[-1], " ~~ vy*wy", w[-1]) else paste0("wy", w[-1], " ~~ wy", w[-1]),
    if (equal) paste0("wx", w[-1], " ~~ cxy*wy", w[-1]) else paste0("wx", w[-1], " ~~ wy", w[-1]),
    "RIx ~~ RIx", "RIy ~~ RIy", "RIx ~~ RIy",
    paste0("x", w, " ~~ 0*x", w),
    paste0("y", w, " ~~ 0*y", w)
  )
  paste(lines, collapse = "\n")
}

fit_one <- function(file, T, equal = FALSE) {
  d <- read.csv(file.path("tests", "data", file))
  fit <- lavaan(riclpm_syntax(T, equal), data = d, missing = "ml", meanstructure = TRUE,
                int.ov.free = TRUE, information = "observed",
                observed.information = "hessian")
  pe <- parameterEstimates(fit)
  get <- function(lhs, op, rhs) {
    row <- pe[pe$lhs == lhs & pe$op == op & pe$rhs == rhs, ]
    c(est = row$est[1], se = row$se[1])
  }
  v <- vcov(fit)
  # Huber-White robust SEs (MLR): same estimates, sandwich standard errors
  rob <- lavaan(riclpm_syntax(T, equal), data = d, missing = "ml", meanstructure = TRUE,
                int.ov.free = TRUE, estimator = "MLR", information = "observed",
                observed.information = "hessian")
  pr <- parameterEstimates(rob)
  rse <- function(lhs, rhs) pr$se[pr$lhs == lhs & pr$op == "~" & pr$rhs == rhs][1]
  out <- list(
    x_to_x = get("wx2", "~", "wx1"), y_to_x = get("wx2", "~", "wy1"),
    x_to_y = get("wy2", "~", "wx1"), y_to_y = get("wy2", "~", "wy1"),
    w1_var_x = get("wx1", "~~", "wx1"), w1_cov = get("wx1", "~~", "wy1"),
    w1_var_y = get("wy1", "~~", "wy1"),
    ri_var_x = get("RIx", "~~", "RIx"), ri_cov = get("RIx", "~~", "RIy"),
    ri_var_y = get("RIy", "~~", "RIy"),
    innov2_var_x = get("wx2", "~~", "wx2"), innov2_cov = get("wx2", "~~", "wy2"),
    innov2_var_y = get("wy2", "~~", "wy2"),
    innov3_var_x = get("wx3", "~~", "wx3"), innov3_cov = get("wx3", "~~", "wy3"),
    innov3_var_y = get("wy3", "~~", "wy3"),
    mean_x1 = get("x1", "~1", ""), mean_y1 = get("y1", "~1", ""),
    cov_xy_yx = v["c", "b"],
    robust_se = list(x_to_x = rse("wx2", "wx1"), y_to_x = rse("wx2", "wy1"),
                     x_to_y = rse("wy2", "wx1"), y_to_y = rse("wy2", "wy1")),
    loglik = as.numeric(logLik(fit)),
    n = nobs(fit)
  )
  out
}

ref <- list(
  meta = list(R = R.version.string, lavaan = as.character(packageVersion("lavaan"))),
  complete = fit_one("riclpm_complete.csv", 4),
  missing = fit_one("riclpm_missing.csv", 3),
  complete_equal = fit_one("riclpm_complete.csv", 4, equal = TRUE),
  missing_equal = fit_one("riclpm_missing.csv", 3, equal = TRUE)
)
# with equal innovations the wave-2 and wave-3 entries are the one shared estimate
for (k in c("complete_equal", "missing_equal")) {
  for (v in c("var_x", "cov", "var_y")) {
    ref[[k]][[paste0("innov_", v)]] <- ref[[k]][[paste0("innov2_", v)]]
    ref[[k]][[paste0("innov2_", v)]] <- NULL
    ref[[k]][[paste0("innov3_", v)]] <- NULL
  }
}
writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path("tests", "data", "riclpm_reference.json"))
