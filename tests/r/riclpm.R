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
# Packages: lavaan, jsonlite.

suppressPackageStartupMessages({
  library(jsonlite)
  library(lavaan)
})

riclpm_syntax <- function(T) {
  w <- seq_len(T)
  lines <- c(
    paste0("RIx =~ ", paste0("1*x", w, collapse = " + ")),
    paste0("RIy =~ ", paste0("1*y", w, collapse = " + ")),
    paste0("wx", w, " =~ 1*x", w),
    paste0("wy", w, " =~ 1*y", w),
    paste0("wx", w[-1], " ~ a*wx", w[-T], " + b*wy", w[-T]),
    paste0("wy", w[-1], " ~ c*wx", w[-T], " + d*wy", w[-T]),
    "wx1 ~~ wx1", "wy1 ~~ wy1", "wx1 ~~ wy1",
    paste0("wx", w[-1], " ~~ wx", w[-1]),
    paste0("wy", w[-1], " ~~ wy", w[-1]),
    paste0("wx", w[-1], " ~~ wy", w[-1]),
    "RIx ~~ RIx", "RIy ~~ RIy", "RIx ~~ RIy",
    paste0("x", w, " ~~ 0*x", w),
    paste0("y", w, " ~~ 0*y", w)
  )
  paste(lines, collapse = "\n")
}

fit_one <- function(file, T) {
  d <- read.csv(file.path("tests", "data", file))
  fit <- lavaan(riclpm_syntax(T), data = d, missing = "ml", meanstructure = TRUE,
                int.ov.free = TRUE, information = "observed",
                observed.information = "hessian")
  pe <- parameterEstimates(fit)
  get <- function(lhs, op, rhs) {
    row <- pe[pe$lhs == lhs & pe$op == op & pe$rhs == rhs, ]
    c(est = row$est[1], se = row$se[1])
  }
  v <- vcov(fit)
  # Huber-White robust SEs (MLR): same estimates, sandwich standard errors
  rob <- lavaan(riclpm_syntax(T), data = d, missing = "ml", meanstructure = TRUE,
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
  missing = fit_one("riclpm_missing.csv", 3)
)
writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path("tests", "data", "riclpm_reference.json"))
