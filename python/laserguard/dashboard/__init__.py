"""`laserguard dashboard`: the live web page (Dash) over the stored state and the feedback stream."""
