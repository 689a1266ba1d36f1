// Glasshouse's admin pages: a submit button with data-confirm asks before it submits (the app's CSP
// allows no onclick attributes).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});
