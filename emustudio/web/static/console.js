// The Create Studio form: once a VPC is chosen, only its subnets and security groups are shown.
(function () {
  "use strict";
  var vpc = document.getElementById("f-vpc_id");
  if (!vpc || vpc.tagName !== "SELECT") return;
  function apply() {
    var chosen = vpc.value;
    document.querySelectorAll("#subnet-choices label[data-vpc]").forEach(function (label) {
      label.hidden = chosen !== "" && label.getAttribute("data-vpc") !== chosen;
      if (label.hidden) label.querySelector("input").checked = false;
    });
    ["f-workspace_sg", "f-engine_sg"].forEach(function (id) {
      var select = document.getElementById(id);
      if (!select || select.tagName !== "SELECT") return;
      Array.prototype.forEach.call(select.options, function (option) {
        if (!option.value) return;
        option.hidden = chosen !== "" && option.textContent.indexOf(chosen) < 0;
      });
    });
  }
  vpc.addEventListener("change", apply);
  apply();
})();
