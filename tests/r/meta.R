# Reference values for tests/test_meta.py, computed with R's metafor.
#
# Run from the repository root:  Rscript tests/r/meta.R
# Writes tests/data/meta_<name>.csv (the published data sets, columns study, r, n[, moderators])
# and tests/data/meta_reference.json. The test suite reads these files and never calls R.
#
# Data sets shipped with metafor (package metadat), all correlations with sample sizes:
#   dat.molloy2014   - conscientiousness and medication adherence, 16 studies
#   dat.mcdaniel1994 - employment interview validity, 160 studies (moderator: type)
#   dat.cohen1981    - instructor ratings and student achievement, 20 studies
suppressMessages(library(metafor))
library(jsonlite)

out_dir <- file.path("tests", "data")
ctrl <- list(threshold = 1e-10, maxiter = 1000)

sets <- list(
  molloy2014 = data.frame(study = paste(dat.molloy2014$authors, dat.molloy2014$year),
                          r = dat.molloy2014$ri, n = dat.molloy2014$ni),
  mcdaniel1994 = data.frame(study = as.character(dat.mcdaniel1994$study),
                            r = dat.mcdaniel1994$ri, n = dat.mcdaniel1994$ni,
                            type = dat.mcdaniel1994$type, struct = dat.mcdaniel1994$struct),
  cohen1981 = data.frame(study = paste(dat.cohen1981$study, dat.cohen1981$sample, sep = " / "),
                         r = dat.cohen1981$ri, n = dat.cohen1981$ni)
)

fit_summary <- function(res) {
  pr <- predict(res, transf = transf.ztor)
  is_fe <- res$method == "FE"
  list(
    k = res$k, n = sum(res$ni),
    z = as.numeric(res$b), se = res$se,
    estimate = as.numeric(pr$pred),
    ci_low = as.numeric(pr$ci.lb), ci_high = as.numeric(pr$ci.ub),
    pi_low = if (is_fe) as.numeric(pr$ci.lb) else as.numeric(pr$pi.lb),
    pi_high = if (is_fe) as.numeric(pr$ci.ub) else as.numeric(pr$pi.ub),
    tau2 = res$tau2, i2 = res$I2 / 100, q = res$QE, q_p = res$QEp
  )
}

# Hunter & Schmidt (2004) bare-bones meta-analysis, by hand (psychmeta is not installed).
hunter_schmidt <- function(r, n, rxx = 1, ryy = 1) {
  k <- length(r); N <- sum(n); nbar <- N / k
  rbar <- sum(n * r) / N
  var_obs <- sum(n * (r - rbar)^2) / N
  var_e <- (1 - rbar^2)^2 / (nbar - 1)
  var_res <- max(0, var_obs - var_e)
  A <- sqrt(rxx * ryy)
  q <- N * var_obs / (1 - rbar^2)^2  # Hunter & Schmidt's chi-square test, df = k - 1
  list(k = k, n = N, rbar = rbar, var_obs = var_obs, var_e = var_e, var_res = var_res,
       pct_explained = 100 * var_e / var_obs, sd_res = sqrt(var_res),
       se = sqrt(var_obs / k),
       ci_low = rbar - qnorm(0.975) * sqrt(var_obs / k),
       ci_high = rbar + qnorm(0.975) * sqrt(var_obs / k),
       cr_low = rbar - qnorm(0.9) * sqrt(var_res), cr_high = rbar + qnorm(0.9) * sqrt(var_res),
       q = q, q_p = pchisq(q, k - 1, lower.tail = FALSE),
       rxx = rxx, ryy = ryy, rho = rbar / A, sd_rho = sqrt(var_res) / A,
       rho_cr_low = (rbar - qnorm(0.9) * sqrt(var_res)) / A,
       rho_cr_high = (rbar + qnorm(0.9) * sqrt(var_res)) / A)
}

ref <- list(metafor_version = as.character(packageVersion("metafor")),
            control_threshold = ctrl$threshold)
for (name in names(sets)) {
  d <- sets[[name]]
  write.csv(d, file.path(out_dir, paste0("meta_", name, ".csv")), row.names = FALSE)
  entry <- list()
  for (m in c("FE", "DL", "REML")) {
    res <- rma(measure = "ZCOR", ri = r, ni = n, data = d, method = m, control = ctrl)
    entry[[m]] <- fit_summary(res)
  }
  entry[["HS"]] <- hunter_schmidt(d$r, d$n)
  entry[["HS_corrected"]] <- hunter_schmidt(d$r, d$n, rxx = 0.8, ryy = 0.7)
  # leave-one-out sensitivity (estimates and CIs back-transformed to r)
  for (m in c("REML", "DL")) {
    res <- rma(measure = "ZCOR", ri = r, ni = n, data = d, method = m, control = ctrl)
    l1 <- leave1out(res, transf = transf.ztor)
    entry[[paste0("leave1out_", m)]] <- list(estimate = as.numeric(l1$estimate),
                                             ci_low = as.numeric(l1$ci.lb),
                                             ci_high = as.numeric(l1$ci.ub),
                                             tau2 = as.numeric(l1$tau2),
                                             i2 = as.numeric(l1$I2) / 100,
                                             q = as.numeric(l1$Q), q_p = as.numeric(l1$Qp))
  }
  ref[[name]] <- entry
}

# meta-regression with a categorical moderator (complete cases on the moderator)
d <- sets$mcdaniel1994
for (mod in c("type", "struct")) {
  dd <- d[!is.na(d[[mod]]), ]
  for (m in c("REML", "DL", "FE")) {
    res <- rma(measure = "ZCOR", ri = r, ni = n, mods = as.formula(paste0("~ factor(", mod, ")")),
               data = dd, method = m, control = ctrl)
    ref[[paste0("metareg_mcdaniel1994_", mod, "_", m)]] <- list(
      k = res$k, term = rownames(res$b), estimate = as.numeric(res$b), se = as.numeric(res$se),
      ci_low = as.numeric(res$ci.lb), ci_high = as.numeric(res$ci.ub),
      p_val = as.numeric(res$pval), tau2 = res$tau2,
      qm = res$QM, qm_df = res$QMdf[1], qm_p = res$QMp, qe = res$QE, qe_p = res$QEp,
      i2 = if (is.null(res$I2)) NA else res$I2 / 100)
  }
}

writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(out_dir, "meta_reference.json"))
cat("wrote", file.path(out_dir, "meta_reference.json"), "\n")
